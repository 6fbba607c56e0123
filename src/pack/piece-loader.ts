import { createHash } from "node:crypto";
import { appliedHeapFlags } from "../util/heap.js";
import * as fs from "node:fs";
import { runInThisContext } from "node:vm";
import { Worker } from "node:worker_threads";
import * as zlib from "node:zlib";

/** What loading one piece gives: the file's CRC-32 so far, and its SHA-256 (hex) after its last piece. */
export interface PieceDigest {
  crc: number;
  sha256?: string;
}

/** Why a piece could not be loaded: the file changed size, or reading it failed (errno code). */
export class PieceLoadError extends Error {
  constructor(readonly reason: "changed" | "read", readonly code: string, message: string) {
    super(message);
  }
}

/**
 * Reads the pieces of the files being zipped into the zip writer's buffers and computes their CRC-32 and SHA-256.
 * The worker implementation does both on one thread of its own, with plain blocking reads: one message per piece
 * instead of open, read and close hops through libuv's pool, and the hashing off the main thread (which meanwhile
 * computes the zip's own SHA-256 and writes). The inline one does the same on the calling thread (small packages,
 * where starting a thread costs more than it saves).
 */
export interface PieceLoader {
  /**
   * Read `length` bytes at `position` of file `path` (number `file` in the plan) into `buf`, then hash them as the
   * next piece of that file (`first`: its first piece, `last`: its last). A file read in one piece is read with one
   * more byte, and its last piece is followed by a one-byte read: either shows that it grew (PieceLoadError
   * "changed"). `buf` must be part of a buffer from `buffer()`, hold `length + 1` bytes and stay untouched until the
   * promise settles.
   * `crc` false (a file in one piece only): no CRC-32 here (`crc` is 0); the caller computes it on its own thread.
   */
  load(file: number, path: string, buf: Buffer, position: number, length: number, first: boolean, last: boolean, crc?: boolean): Promise<PieceDigest>;
  /** A buffer of `bytes` this loader can fill, in parts (shared memory for the worker); the zip asks for one. */
  buffer(bytes: number): Buffer;
  close(): void;
}

/** The outcome of one load, as the worker posts it. */
type LoadOutcome = ["ok", number, string?] | ["changed"] | ["error", string, string];
type LoadFn = (buf: Buffer, file: number, path: string, position: number, length: number, first: boolean, last: boolean, withCrc: boolean) => LoadOutcome;

/**
 * The load function's source, plain JavaScript: the worker evaluates it (nothing to resolve on disk, so it runs
 * from the built package and from the TypeScript sources alike) and the inline loader builds the same function
 * from it (vm), so both read and hash the same way.
 */
const LOAD_SOURCE = `(function (fs, createHash, crc32) {
  const open = new Map();
  const one = Buffer.alloc(1);
  return function load(buf, file, path, position, length, first, last, withCrc) {
    let fd;
    // Never through a link put there since the scan; never waiting on a FIFO (reading it fails).
    try { fd = fs.openSync(path, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW || 0) | (fs.constants.O_NONBLOCK || 0)); } catch (e) { return ["error", e.code || "EIO", e.message]; }
    try {
      const want = first && last ? length + 1 : length;
      let got = 0;
      while (got < want) {
        const n = fs.readSync(fd, buf, got, want - got, position + got);
        if (n === 0) break;
        got += n;
      }
      if (got !== length) return ["changed"];
      if (last && !first && fs.readSync(fd, one, 0, 1, position + length) > 0) return ["changed"];
    } catch (e) {
      return ["error", e.code || "EIO", e.message];
    } finally {
      fs.closeSync(fd);
    }
    const data = buf.subarray(0, length);
    const state = first ? { sha: createHash("sha256"), crc: 0 } : open.get(file);
    state.sha.update(data);
    if (withCrc || !(first && last)) state.crc = crc32(data, state.crc);
    if (!last) { open.set(file, state); return ["ok", state.crc]; }
    open.delete(file);
    return ["ok", state.crc, state.sha.digest("hex")];
  };
})`;

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
// Node re-applied the process's V8 flags as this thread started: the heap settings made at run time again.
if (workerData && workerData.heapFlags) require("node:v8").setFlagsFromString(workerData.heapFlags);
const load = ${LOAD_SOURCE}(require("node:fs"), require("node:crypto").createHash, require("node:zlib").crc32);
const bufs = new Map();
parentPort.on("message", (m) => {
  if (m[0] === "buf") { bufs.set(m[1], Buffer.from(m[2])); return; }
  const [, seq, bufId, offset, capacity, file, path, position, length, first, last, withCrc] = m;
  parentPort.postMessage([seq, ...load(bufs.get(bufId).subarray(offset, offset + capacity), file, path, position, length, first, last, withCrc)]);
});
`;

function settle(outcome: LoadOutcome): PieceDigest {
  if (outcome[0] === "ok") return outcome[2] === undefined ? { crc: outcome[1] } : { crc: outcome[1], sha256: outcome[2] };
  if (outcome[0] === "changed") throw new PieceLoadError("changed", "", "the file changed size");
  throw new PieceLoadError("read", outcome[1], outcome[2]);
}

/** Reads and hashes on the calling thread (blocking reads: for small packages). */
export function inlineLoader(): PieceLoader {
  const crc32 = (zlib as unknown as { crc32: unknown }).crc32;
  const load = (runInThisContext(LOAD_SOURCE, { filename: "scanbridge-piece-loader.js" }) as (f: unknown, h: unknown, c: unknown) => LoadFn)(fs, createHash, crc32);
  return {
    load: async (file, path, buf, position, length, first, last, crc = true) => settle(load(buf, file, path, position, length, first, last, crc)),
    buffer: (bytes) => Buffer.allocUnsafeSlow(bytes),
    close: () => {},
  };
}

/**
 * Reads and hashes on worker threads, into shared buffers (nothing is copied between the threads). A file's pieces
 * all go to one thread (it keeps the file's running hashes); files alternate between the threads, so on two cores
 * the reading and hashing of two files overlap with the main thread's work.
 */
export function workerLoader(threads = 1): PieceLoader {
  // Not unref'd: while pieces are being read, the answers are what the process waits for. close() ends them.
  const workers = Array.from({ length: Math.max(1, threads) }, () => new Worker(WORKER_SOURCE, { eval: true, workerData: { heapFlags: appliedHeapFlags() } }));
  const ids = new WeakMap<ArrayBufferLike, number>();
  const waiting = new Map<number, { resolve: (d: PieceDigest) => void; reject: (e: unknown) => void }>();
  let seq = 0;
  let nextBuf = 0;
  let broken: unknown;
  let closed = false;
  const failAll = (err: unknown) => {
    broken ??= err;
    for (const w of waiting.values()) w.reject(broken);
    waiting.clear();
  };
  for (const worker of workers) {
    worker.on("message", (m: [number, ...LoadOutcome]) => {
      const w = waiting.get(m[0]);
      waiting.delete(m[0]);
      if (!w) return;
      try {
        w.resolve(settle(m.slice(1) as LoadOutcome));
      } catch (err) {
        w.reject(err);
      }
    });
    worker.on("error", failAll);
    worker.on("exit", () => {
      if (!closed) failAll(new Error("a reading thread stopped"));
    });
  }
  return {
    load(file, path, buf, position, length, first, last, crc = true) {
      if (broken !== undefined) return Promise.reject(broken as Error);
      const id = ids.get(buf.buffer);
      if (id === undefined) return Promise.reject(new Error("workerLoader: the buffer must come from buffer()"));
      const s = seq++;
      return new Promise<PieceDigest>((resolve, reject) => {
        waiting.set(s, { resolve, reject });
        workers[file % workers.length]!.postMessage(["load", s, id, buf.byteOffset, buf.length, file, path, position, length, first, last, crc]);
      });
    },
    buffer(bytes) {
      const sab = new SharedArrayBuffer(bytes);
      const id = nextBuf++;
      ids.set(sab, id);
      for (const worker of workers) worker.postMessage(["buf", id, sab]);
      return Buffer.from(sab);
    },
    close() {
      closed = true;
      failAll(new Error("the zip was closed"));
      for (const worker of workers) void worker.terminate();
    },
  };
}
