import { createHash, type Hash } from "node:crypto";
import { readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { InputError, InterruptedError } from "../errors.js";
import { msg } from "../i18n/index.js";
import { hashFileRange } from "../util/hash.js";
import type { RemoteWriter } from "./destination.js";
import { MIN_SEGMENT_BYTES } from "./lanes.js";

/** A byte range of the package sent over one channel. */
export interface Segment {
  start: number;
  end: number;
  /** Contiguous acknowledged bytes reach this absolute offset. */
  done: number;
  /** Bytes below this offset have been read and sent (set while pumping; never in the journal). */
  sent?: number;
}

/** Requests in flight and bytes per request. */
export interface Window {
  requests: number;
  chunkSize: number;
}

/** Called with every chunk as it is read from the package, in read order per segment. */
export type OnRead = (data: Buffer, position: number) => void;

/**
 * Write [seg.done, seg.end) of the local file at the same offsets, keeping `window.requests` writes in flight.
 * Read buffers are recycled once the server has acknowledged them (no allocation per chunk).
 */
export function pumpSegment(
  src: FileHandle,
  writer: RemoteWriter,
  seg: Segment,
  window: Window,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
  onRead?: OnRead,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const inflight: Array<{ pos: number; len: number; acked: boolean }> = [];
    const free: Buffer[] = [];
    let next = seg.done;
    let failed = false;
    let pumping = false;
    let again = false;
    seg.sent = next;
    if (next >= seg.end) return resolve();
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      signal?.removeEventListener("abort", onAbort);
      reject(signal?.aborted ? new InterruptedError() : err);
    };
    const onAbort = () => fail(new InterruptedError());
    signal?.addEventListener("abort", onAbort, { once: true });
    const finish = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    const pump = async () => {
      if (pumping) {
        again = true;
        return;
      }
      pumping = true;
      try {
        do {
          again = false;
          while (!failed && inflight.length < window.requests && next < seg.end) {
            const len = Math.min(window.chunkSize, seg.end - next);
            const pos = next;
            next += len;
            seg.sent = next; // A lane added during the upload may take [sent, end) from here on (pumpSegment re-reads seg.end).
            const whole = free.pop() ?? Buffer.allocUnsafeSlow(window.chunkSize);
            const buf = whole.subarray(0, len);
            // A synchronous read: the package is usually in the page cache (just packed), where a 128 KiB read
            // costs less than a trip through libuv's thread pool (measured: a third of the CPU time).
            let got = 0;
            while (got < len) {
              const bytesRead = readSync(src.fd, buf, got, len - got, pos + got);
              if (bytesRead === 0) throw new InputError("PACKAGE_CHANGED", msg("upload.packageShrank"));
              got += bytesRead;
            }
            onRead?.(buf, pos);
            const rec = { pos, len, acked: false };
            inflight.push(rec);
            writer.write(buf, pos).then(
              () => {
                free.push(whole);
                rec.acked = true;
                let n = 0;
                while (inflight.length && inflight[0]!.acked) {
                  const r = inflight.shift()!;
                  seg.done = r.pos + r.len;
                  n += r.len;
                }
                if (n) onBytes(n);
                if (failed) return;
                if (seg.done >= seg.end) finish();
                else void pump();
              },
              (err) => fail(err),
            );
          }
        } while (again && !failed);
      } catch (err) {
        fail(err);
      } finally {
        pumping = false;
      }
    };
    void pump();
  });
}

/** Cut [from, size) into at most `n` segments of at least MIN_SEGMENT_BYTES (one when the rest is small). */
export function splitSegments(from: number, size: number, n: number, minSeg = MIN_SEGMENT_BYTES): Segment[] {
  const remaining = size - from;
  const count = Math.max(1, Math.min(n, Math.floor(remaining / minSeg) || 1));
  const segs: Segment[] = [];
  const per = Math.ceil(remaining / count);
  for (let i = 0; i < count; i++) {
    const start = from + i * per;
    const end = Math.min(size, start + per);
    if (start < end) segs.push({ start, end, done: start });
  }
  if (segs.length === 0) segs.push({ start: from, end: size, done: size });
  return segs;
}

/** Deal segments out to `lanes` channels, round robin: lane i sends its segments one after another. */
export function assignLanes<T>(segments: T[], lanes: number): T[][] {
  const out: T[][] = Array.from({ length: Math.max(1, Math.min(lanes, segments.length)) }, () => []);
  segments.forEach((s, i) => out[i % out.length]!.push(s));
  return out;
}

/**
 * The package's SHA-256 computed from the bytes the upload reads anyway: chunks are fed in file order as they
 * are read; whatever was not seen in order (a resumed prefix, the later segments of a parallel upload) is read
 * from disk only at the end. A plain upload of a package without a .sha256 so reads the file exactly once.
 */
export class InlineHasher {
  private hash: Hash = createHash("sha256");
  /** Bytes [0, pos) have been hashed. */
  pos = 0;

  constructor(private readonly path: string) {}

  /** Feed a chunk read at `position`; only the part that continues the hashed prefix is used. */
  readonly feed: OnRead = (data, position) => {
    if (position > this.pos || position + data.length <= this.pos) return;
    this.hash.update(position === this.pos ? data : data.subarray(this.pos - position));
    this.pos = position + data.length;
  };

  /** Adopt a prefix hash computed elsewhere (e.g. the resume check), when nothing has been hashed yet. */
  adopt(prefix: Hash, length: number): void {
    if (this.pos !== 0 || length <= 0) return;
    this.hash = prefix.copy();
    this.pos = length;
  }

  /** Hash [pos, upTo) from disk now (before sending from `upTo`, so the rest can be fed inline). */
  async catchUp(upTo: number, signal?: AbortSignal): Promise<void> {
    if (upTo <= this.pos) return;
    await hashFileRange(this.path, { start: this.pos, end: upTo, into: this.hash, signal });
    this.pos = upTo;
  }

  /** The hex digest of the whole file of `size` bytes, reading from disk only what was not seen. */
  async digest(size: number, signal?: AbortSignal): Promise<string> {
    await this.catchUp(size, signal);
    return this.hash.copy().digest("hex");
  }
}
