import { createHash, randomBytes, type Hash } from "node:crypto";
import { open, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { InputError, InterruptedError, NetworkError, RemoteVerificationError, ScanbridgeError, describeIoError } from "../errors.js";
import { localize, msg, warnText, type LocalText } from "../i18n/index.js";
import type { Emit } from "../ui/events.js";
import { hashFileRange, parseSha256Line } from "../util/hash.js";
import type { Destination, RemoteReader, RemoteStat, RemoteWriter } from "./destination.js";
import { EARLY_LANES_RTT_MS, RAMP_MAX_LANES, autoLanes, laneWindow, rampSplit, stillRising, windowBound } from "./lanes.js";
import { receiptNameFor, type Receipt } from "./receipt.js";
import { defaultRetryPolicy, withRetries, type RetryPolicy } from "./retry.js";
import { InlineHasher, assignLanes, pumpSegment, splitSegments, type Segment } from "./segments.js";

export { pumpSegment } from "./segments.js";

/** What uploadPackage needs; side effects (connection, clock) come in as parameters. */
export interface UploadInput {
  /** Local `<Name>.zip`. */
  packagePath: string;
  /** Opens a fresh connection for each attempt (never reuse a client after end()). */
  connect: () => Promise<Destination>;
  /** Read the remote file back and compare SHA-256 (and check a resumed prefix by hash). */
  verify?: boolean;
  /** Replace an existing remote package. */
  force?: boolean;
  retry?: RetryPolicy;
  /** Parallel channels for one file (segments); undefined = chosen from the round-trip time (src/transfer/lanes.ts). */
  connections?: number;
  emit: Emit;
  signal?: AbortSignal;
  /** Messages may name the package (PHI) only when verbose. */
  verbose?: boolean;
  now?: () => Date;
  /** Write the receipt beside the package (default true). */
  writeReceipt?: boolean;
  /** The package's summary for the receipt, when the caller started reading it already (readPackageSummary). */
  summary?: Promise<Receipt["summary"]>;
}

/** What uploadPackage did. */
export interface UploadResult {
  receipt: Receipt;
  /** Where the receipt was written (undefined when writeReceipt is false). */
  receiptPath: string | undefined;
  remotePath: string;
  size: number;
  sha256: string;
  /** Bytes sent in this run (less than size when resumed). */
  bytesSent: number;
  resumedFrom: number;
  attempts: number;
  verified: "size" | "sha256";
  /** Whether the final rename replaced atomically (posix-rename) or the package was written in place. */
  placement: "atomic-rename" | "rename" | "in-place";
  durationMs: number;
  /** An interrupted earlier upload had already placed the zip; only the checks and the marker were done now. */
  completedEarlierUpload: boolean;
  /** Parallel channels used for the data (the last attempt's; after any the server refused). */
  lanes: number;
  /** Of those, the channels added while the data was sent, as the throughput showed the link could carry them. */
  lanesAdded: number;
  /** Round-trip time measured at connect, milliseconds (the basis of the automatic lane count). */
  rttMs?: number;
}

interface Journal {
  format: "scanbridge-upload-journal";
  url: string;
  remotePath: string;
  size: number;
  mtimeMs: number;
  segments: Segment[];
}

/** Names used at the destination for a package file name. */
export function remoteNamesFor(zipName: string): { partial: string; parts: string; final: string; marker: string; markerPartial: string } {
  return { partial: `.${zipName}.partial`, parts: `.${zipName}.parts`, final: zipName, marker: `${zipName}.sha256`, markerPartial: `.${zipName}.sha256.partial` };
}

/** SHA-256 of a remote range [start, end), with many reads in flight, hashed in order. */
export async function hashRemoteRange(
  reader: RemoteReader,
  start: number,
  end: number,
  window: { requests: number; chunkSize: number },
  onBytes?: (n: number) => void,
  signal?: AbortSignal,
): Promise<{ hash: Hash; bytes: number }> {
  const h = createHash("sha256");
  const queue: Array<Promise<Buffer>> = [];
  let next = start;
  let bytes = 0;
  const fill = () => {
    while (queue.length < window.requests && next < end) {
      const len = Math.min(window.chunkSize, end - next);
      const p = reader.read(len, next);
      p.catch(() => {}); // Awaited in order below; avoid unhandled rejections for the ones behind a failure.
      queue.push(p);
      next += len;
    }
  };
  fill();
  while (queue.length > 0) {
    if (signal?.aborted) throw new InterruptedError();
    const buf = await queue.shift()!;
    h.update(buf);
    bytes += buf.length;
    onBytes?.(buf.length);
    if (buf.length === 0) break;
    fill();
  }
  return { hash: h, bytes };
}

async function fileExists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function readJournal(path: string): Promise<Journal | undefined> {
  try {
    const j = JSON.parse(await readFile(path, "utf8")) as Journal;
    if (j.format !== "scanbridge-upload-journal" || !Array.isArray(j.segments)) return undefined;
    return j;
  } catch {
    return undefined;
  }
}

async function writeJournal(path: string, j: Journal): Promise<void> {
  const tmp = path + ".tmp";
  await writeFile(tmp, JSON.stringify(j) + "\n", { mode: 0o600 });
  await rename(tmp, path);
}

// ---------------------------------------------------------------------------------------------------------------
// Plan: what is uploaded, checked locally before any network work.

/** The local facts of one upload. */
interface UploadPlan {
  packagePath: string;
  zipName: string;
  names: ReturnType<typeof remoteNamesFor>;
  journalPath: string;
  size: number;
  mtimeMs: number;
  /** pack's `<Name>.zip.sha256`: the package's checksum and the exact marker text; undefined = hash while sending. */
  claimed: { sha256: string; text: Buffer } | undefined;
}

/** The package's own `<Name>.zip.sha256` (written by pack), if there is one: its hash and exact text. */
async function readClaimedChecksum(packagePath: string): Promise<{ sha256: string; text: Buffer } | undefined> {
  let text: Buffer;
  try {
    text = await readFile(packagePath + ".sha256");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw describeIoError(err, msg("what.checksumFile"));
  }
  const line = parseSha256Line(text.toString("utf8"));
  if (!line) throw new InputError("CHECKSUM_FILE_INVALID", msg("upload.checksumInvalid"), { hint: msg("upload.recreate.hint") });
  return { sha256: line.sha256, text };
}

async function planUpload(packagePath: string): Promise<UploadPlan> {
  const zipName = basename(packagePath);
  if (!/\.zip$/i.test(zipName)) throw new InputError("NOT_A_PACKAGE", msg("upload.notAPackage"), { hint: msg("upload.notAPackage.hint") });
  let size: number;
  let mtimeMs: number;
  try {
    const st = await stat(packagePath);
    if (!st.isFile()) throw Object.assign(new Error("not a file"), { code: "ENOENT" });
    size = st.size;
    mtimeMs = st.mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new InputError("PACKAGE_NOT_FOUND", msg("upload.packageNotFound"), { privateLines: [packagePath], hint: msg("upload.packageNotFound.hint") });
    }
    throw describeIoError(err, msg("what.package"));
  }
  // pack's .sha256 is the package's checksum: it becomes the marker, and --verify (or the receiver) checks the
  // bytes against it. Without one, the bytes are hashed as they are read for sending (InlineHasher).
  const claimed = await readClaimedChecksum(packagePath);
  return {
    packagePath,
    zipName,
    names: remoteNamesFor(zipName),
    journalPath: join(dirname(packagePath), `.${zipName}.upload.json`),
    size,
    mtimeMs,
    claimed,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Segments: sending bytes over one or more channels.

/** Shared state of the sending side across attempts. */
interface SendState {
  plan: UploadPlan;
  emit: Emit;
  signal?: AbortSignal;
  label: (s: LocalText) => LocalText | string;
  hasher: InlineHasher | undefined;
  bytesSent: number;
  /** Lanes the ramp added in the last sending (src/transfer/lanes.ts). */
  lanesAdded: number;
  /** The server refused a lane the ramp asked for: no more ramping in this upload. */
  rampRefused: boolean;
}

/**
 * Send the open parts of `segs` into `path`, the segments dealt out over `lanes` channels (each lane opens its
 * own handle; all open at once, and no byte is written before every open, so the first one's truncation comes
 * first). With `journal`, the segments' progress is saved locally about once a second so a re-run can resume them.
 * Returns the file's size at the destination after the last write (checked at close, no extra round trip).
 * `atDataEnd` runs once every byte is acknowledged, alongside the closes. `writers`: the lanes' handles, opened
 * already (one per lane, the first one truncating).
 */
async function sendSegments(st: SendState, dest: Destination, path: string, segs: Segment[], o: { truncate: boolean; lanes: number; attempt: number; journal?: Journal; atDataEnd?: () => Promise<unknown>; writers?: Array<Promise<RemoteWriter>>; ramp?: { rttMs: number; maxLanes: number } }): Promise<number> {
  const { plan, emit } = st;
  const total = plan.size;
  emit({ type: "step", id: "upload", label: st.label(o.attempt > 1 ? msg("step.uploadAttempt", { attempt: o.attempt }) : msg("step.upload")) });
  // Everything outside the still-open parts of the segments is already at the destination.
  let done = total - segs.reduce((a, s) => a + (s.end - s.done), 0);
  let lastEmit = 0;
  let lastJournal = Date.now();
  emit({ type: "progress", id: "upload", done, total, unit: "bytes" });
  // Journal writes go one after another (they share a temporary file); each one saves the segments as they are then.
  let journalChain: Promise<void> = Promise.resolve();
  const saveJournal = () => {
    const j = o.journal;
    if (!j) return journalChain;
    journalChain = journalChain.then(() => writeJournal(plan.journalPath, { ...j, segments: segs.map(({ start, end, done }) => ({ start, end, done })) }).catch(() => {}));
    return journalChain;
  };
  const src = await open(plan.packagePath, "r");
  const writers: RemoteWriter[] = [];
  try {
    const fst = await src.stat();
    if (fst.size !== plan.size || fst.mtimeMs !== plan.mtimeMs) throw new InputError("PACKAGE_CHANGED", msg("upload.packageChanged"), { hint: msg("upload.packageChanged.hint") });
    const open_ = segs.filter((s) => s.done < s.end);
    const byLane = assignLanes(open_.length ? open_ : segs, o.lanes);
    // Every lane opens at once (one round trip); lane 0 creates/truncates, the others open without truncating.
    const opening = o.writers ?? byLane.map((_, lane) => dest.openWrite(path, { truncate: o.truncate && lane === 0, lane }));
    const opened = await Promise.allSettled(opening);
    for (const r of opened) if (r.status === "fulfilled") writers.push(r.value);
    const refused = opened.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (refused) throw refused.reason;
    // All bytes in flight together stay under one budget, however many lanes (memory is bounded by it).
    const window = laneWindow(dest.window, byLane.length);
    const onBytes = (k: number) => {
      done += k;
      st.bytesSent += k;
      const t = Date.now();
      if (t - lastEmit > 50 || done === total) {
        lastEmit = t;
        emit({ type: "progress", id: "upload", done, total, unit: "bytes" });
      }
      if (o.journal && t - lastJournal > 1000) {
        lastJournal = t;
        void saveJournal();
      }
    };
    const pumpLane = async (laneSegs: Segment[], lane: number) => {
      for (const seg of laneSegs) await pumpSegment(src, writers[lane]!, seg, window, onBytes, st.signal, st.hasher?.feed);
    };
    const pumping = byLane.map(pumpLane);
    // The ramp adds lanes while the data is sent, each taking the back half of the largest open segment.
    const ramp = o.ramp && o.journal && byLane.length > 1 ? startRamp(st, dest, path, segs, byLane.length, o.ramp, window, () => done, (seg, writer, lane) => {
      writers.push(writer);
      // Called in the same tick as the split: the split is in the journal on disk before the new lane writes.
      const p = saveJournal().then(() => pumpLane([seg], lane));
      p.catch(() => {}); // awaited below, with the others
      pumping.push(p);
    }) : undefined;
    try {
      // Lanes the ramp adds are pushed onto `pumping` while it is awaited.
      for (let n = 0; n < pumping.length;) {
        n = pumping.length;
        await Promise.all(pumping.slice(0, n));
      }
    } finally {
      st.lanesAdded = (await ramp?.stop()) ?? 0;
    }
    // The closes go out together with whatever the caller has waiting for the end of the data (one round trip).
    const ending = o.atDataEnd?.();
    const sizes = await Promise.all(writers.splice(0).map((w) => w.finish()));
    await ending;
    emit({ type: "step-done", id: "upload" });
    return Math.max(...sizes);
  } catch (err) {
    emit({ type: "step-done", id: "upload", ok: false });
    throw err;
  } finally {
    await saveJournal();
    for (const w of writers) await w.close().catch(() => {});
    await src.close();
  }
}

/**
 * Add lanes one at a time while the link shows it can carry them (src/transfer/lanes.ts: window-bound, and the
 * throughput rose with the last lane added). Every 3 round trips (at least 300 ms) the acknowledged bytes are
 * measured; the interval after each change is skipped (the new lane fills its window). A lane the server refuses
 * stops the ramp with one CHANNELS_LIMITED warning. `onLane` gets the new segment (the back half of the open
 * segment with most bytes still unsent, split in the same tick) and its writer. `stop` resolves to the lanes added.
 */
function startRamp(
  st: SendState,
  dest: Destination,
  path: string,
  segs: Segment[],
  startLanes: number,
  o: { rttMs: number; maxLanes: number },
  window: { requests: number; chunkSize: number },
  acked: () => number,
  onLane: (seg: Segment, writer: RemoteWriter, lane: number) => void,
): { stop: () => Promise<number> } {
  let lanes = startLanes;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  /** The open of a new lane's file, once asked for (it creates the file: it must be answered and closed before the end). */
  let fileOpening: Promise<unknown> | undefined;
  const tickMs = Math.max(3 * o.rttMs, 300);
  let mark = { at: performance.now(), bytes: acked() };
  let warm = true;
  let before: number | undefined;
  const largestOpen = (): { seg: Segment; from: number } | undefined => {
    let best: { seg: Segment; from: number } | undefined;
    for (const seg of segs) {
      const from = Math.max(seg.done, seg.sent ?? seg.done);
      if (!best || seg.end - from > best.seg.end - best.from) best = { seg, from };
    }
    return best;
  };
  const schedule = () => {
    if (!stopped) timer = setTimeout(tick, tickMs);
  };
  const addLane = async (): Promise<boolean> => {
    const want = lanes + 1;
    const got = await dest.openLanes!(want).catch(() => lanes);
    if (stopped || dest.connectionFailure) return false;
    if (got < want) {
      st.rampRefused = true;
      st.emit({ type: "warn", code: "CHANNELS_LIMITED", ...warnText("warn.channelsLimited", { got: lanes, wanted: want }) });
      return false;
    }
    const first = largestOpen();
    if (!first || rampSplit(first.from, first.seg.end) === undefined) return false;
    const opening = dest.openWrite(path, { truncate: false, lane: lanes }).catch(() => undefined);
    fileOpening = opening;
    const writer = await opening;
    if (!writer) return false;
    // Split now, after the open's round trip, and hand the lane over in the same tick.
    const now = largestOpen();
    const mid = now && !stopped ? rampSplit(now.from, now.seg.end) : undefined;
    if (!now || mid === undefined) {
      await writer.close().catch(() => {});
      return false;
    }
    const tail: Segment = { start: mid, end: now.seg.end, done: mid };
    now.seg.end = mid;
    segs.push(tail);
    lanes++;
    window.requests = laneWindow(dest.window, lanes).requests; // the same bytes in flight, shared by one lane more
    onLane(tail, writer, lanes - 1);
    return true;
  };
  let adding: Promise<unknown> = Promise.resolve();
  const tick = () => {
    timer = undefined;
    if (stopped) return;
    const at = performance.now();
    const bytes = acked();
    const rate = (bytes - mark.bytes) / ((at - mark.at) / 1000);
    mark = { at, bytes };
    if (warm) {
      warm = false;
      return schedule();
    }
    const laneInFlight = window.requests * window.chunkSize;
    if (lanes >= o.maxLanes || !windowBound(rate, lanes, o.rttMs, laneInFlight) || (before !== undefined && !stillRising(before, rate, lanes))) return;
    before = rate;
    adding = addLane().then((ok) => {
      fileOpening = undefined;
      if (!ok || stopped) return;
      warm = true;
      mark = { at: performance.now(), bytes: acked() };
      schedule();
    }, () => {});
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (fileOpening) await adding; // its writer is closed once answered
      return lanes - startLanes;
    },
  };
}

/** How many lanes to ask for: --connections, or chosen from the round-trip time and the bytes to send. */
function wantedLanes(requested: number | undefined, rttMs: number, bytes: number): number {
  if (requested !== undefined) return Math.max(1, Math.floor(requested));
  const auto = autoLanes(rttMs, bytes);
  // SCANBRIDGE_FIRST_LANES (at least 2) caps the automatic count at the start, leaving the rest to the ramp (tests).
  const first = Math.floor(Number(process.env.SCANBRIDGE_FIRST_LANES));
  return first >= 2 ? Math.min(auto, first) : auto;
}

/**
 * Lanes for this attempt: `wanted`, as far as the server grants them. Channels opened early on this connection
 * (`early`: asked for and granted) are used without asking again.
 */
async function grantLanes(dest: Destination, wanted: number, explicit: boolean, early: Promise<{ asked: number; got: number }>, emit: Emit): Promise<number> {
  if (wanted <= 1) return 1;
  if (!dest.openLanes) return explicit ? wanted : 1; // a local folder: no channels to open
  const e = await early;
  const got = wanted <= e.asked ? Math.min(wanted, e.got) : await dest.openLanes(wanted);
  if (got < wanted) {
    emit({ type: "warn", code: "CHANNELS_LIMITED", ...warnText("warn.channelsLimited", { got, wanted }) });
  }
  return Math.max(1, got);
}

// ---------------------------------------------------------------------------------------------------------------
// The whole upload: attempts (with retries) of connect → look → send → finalise, then the receipt.

/** The parts file opened on every lane before the stats answered (see UploadAttempt.look). */
interface Speculation {
  writers: Array<Promise<RemoteWriter>>;
  used: boolean;
  /** Closing it must not remove the file (nothing was created, or it now holds something else). */
  keepFile: boolean;
}

/** What the first round trip of an attempt found at the destination. */
interface RemoteState {
  finalStat?: RemoteStat;
  partsStat?: RemoteStat;
  partialStat?: RemoteStat;
}

/** One upload across its attempts: the plan, and what every attempt learns and leaves to the next one. */
class UploadRun {
  readonly st: SendState;
  sha256: string;
  /** The completion marker's exact text. */
  marker: Buffer;
  resumedFrom = -1;
  placement: UploadResult["placement"] = "atomic-rename";
  /** An earlier run placed the zip but stopped before the marker: only the checks and the marker are left. */
  completedEarlier = false;
  /** Parallel segments survive retries in memory and re-runs through the local journal. */
  segments: Segment[] | undefined;
  folderReady = false;
  /** The zip is at its final name (the marker may still be missing). */
  placed = false;
  /** The server forbids renames: the zip is written under its final name (resumable within this run). */
  inPlace = false;
  destUrl = "";
  remoteFinal = "";
  /** Channels for the data in the last attempt (before the ramp added any). */
  lanes = 1;
  rttMs: number | undefined;

  constructor(readonly input: UploadInput, readonly plan: UploadPlan) {
    this.st = {
      plan,
      emit: input.emit,
      signal: input.signal,
      // With --verbose the package's name too (the sender's own screen), put into words only then.
      label: (s: LocalText) => (input.verbose ? `${localize(s)} ${plan.zipName}` : s),
      hasher: plan.claimed ? undefined : new InlineHasher(plan.packagePath),
      bytesSent: 0,
      lanesAdded: 0,
      rampRefused: false,
    };
    this.sha256 = plan.claimed?.sha256 ?? "";
    this.marker = plan.claimed?.text ?? Buffer.alloc(0);
  }

  /** A round-trip sample: the fastest one counts (one alone may be slowed down by a busy machine). */
  sawRtt(ms: number): void {
    this.rttMs = this.rttMs === undefined ? ms : Math.min(this.rttMs, ms);
  }

  /** The package's SHA-256: pack's, or the one hashed while sending (reading from disk only what was not sent now). */
  async packageHash(): Promise<string> {
    const { st, input, plan } = this;
    if (!this.sha256 && st.hasher) {
      input.emit({ type: "step", id: "upload-hash", label: msg("step.uploadHash") });
      this.sha256 = await st.hasher.digest(plan.size, input.signal);
      this.marker = Buffer.from(`${this.sha256}  ${plan.zipName}\n`, "utf8");
      input.emit({ type: "step-done", id: "upload-hash" });
    }
    return this.sha256;
  }
}

/**
 * One attempt on one connection: look at what is there (one round trip), send what is missing, check it, move it
 * into place, write the marker. What it learns goes into the run, for the next attempt after a failure.
 */
class UploadAttempt {
  private readonly input: UploadInput;
  private readonly plan: UploadPlan;
  private readonly emit: Emit;
  private readonly paths: { final: string; marker: string; markerPartial: string; parts: string; partial: string };
  /** The marker's file opened under its hidden name during the sending, and the write of it. */
  private markerStaged: Promise<RemoteWriter | undefined> | undefined;
  private markerWritten: Promise<boolean> | undefined;
  /** Channels opened early on this connection (asked for, granted). */
  private earlyLanes: Promise<{ asked: number; got: number }> = Promise.resolve({ asked: 1, got: 1 });
  /** Runs once every byte is acknowledged, alongside the closes (see sendSegments). */
  private atDataEnd: (() => Promise<unknown>) | undefined;
  private oldMarkerRemoved = false;
  private spec: Speculation | undefined;

  constructor(private readonly run: UploadRun, private readonly dest: Destination, private readonly n: number) {
    this.input = run.input;
    this.plan = run.plan;
    this.emit = run.input.emit;
    const names = run.plan.names;
    this.paths = {
      final: dest.pathOf(names.final),
      marker: dest.pathOf(names.marker),
      markerPartial: dest.pathOf(names.markerPartial),
      parts: dest.pathOf(names.parts),
      partial: dest.pathOf(names.partial),
    };
  }

  async go(): Promise<void> {
    const { run, input, dest, paths } = this;
    try {
      run.destUrl = dest.url;
      run.remoteFinal = paths.final;
      const remote = await this.look();
      const { finalStat } = remote;
      if (finalStat && !input.force && !run.placed && !run.inPlace) await this.foundFinal(finalStat);
      if (run.segments && !remote.partsStat) run.segments = undefined; // The segmented file vanished: its marks mean nothing now.
      let placedNow = false;
      if (run.inPlace && !run.placed) {
        await this.resumeInPlace(remote);
        placedNow = true;
      }
      let workPath: string;
      if (run.placed || run.completedEarlier) {
        workPath = paths.final;
        if (run.completedEarlier && run.resumedFrom < 0) run.resumedFrom = this.plan.size;
      } else {
        // Without --verify nothing is read back: the old marker (when replacing) goes and the staged marker is
        // written in the same round trip as the closes.
        this.atDataEnd = input.verify
          ? undefined
          : () => Promise.all([
            finalStat && input.force ? dest.remove(paths.marker).then(() => (this.oldMarkerRemoved = true)) : undefined,
            this.markerStaged ? (this.markerWritten = this.writeStagedMarker()) : undefined,
          ]);
        workPath = await this.sendData(remote);
      }
      await run.packageHash();
      // A zip an earlier run left without its marker is completed only after its content is checked.
      if ((input.verify || run.completedEarlier) && !run.placed) await this.verifyWork(workPath);
      if (run.placed) {
        // An earlier attempt moved the file into place and lost the connection before the marker.
        if (!placedNow && finalStat?.size !== this.plan.size) throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", msg("upload.changedBeforeMarked"));
      } else if (!run.completedEarlier) {
        await this.finalise(workPath, Boolean(finalStat));
      }
      run.placed = true;
      await this.placeMarker();
      await unlink(this.plan.journalPath).catch(() => {});
      await this.dropSpec();
    } catch (err) {
      await this.dropSpec();
      // A staged marker is empty until the data is complete; remove it while the connection still works.
      const staged = this.markerStaged;
      if (staged && !dest.connectionFailure) {
        await (await staged)?.close().catch(() => {});
        await dest.remove(paths.markerPartial).catch(() => {});
      }
      throw err;
    } finally {
      await dest.close().catch(() => {});
    }
  }

  /**
   * One round trip for the folder and all three questions (on a 150 ms link every sequential request costs); the
   * folder is made when it is new. The link's round-trip time sizes the parallel channels: the fastest of a
   * keepalive and these stats. Setting up a channel takes 4 round trips, so on a clearly long link the extra
   * channels open at once, alongside the first: as many as the login's timing calls for (a low estimate), and more
   * when the keepalive, one round trip later, calls for more.
   */
  private async look(): Promise<RemoteState> {
    const { run, input, dest, paths } = this;
    const size = this.plan.size;
    const rttProbe = dest.measureRtt?.() ?? Promise.resolve(undefined);
    const guess = dest.loginRttMs;
    const firstAsk = dest.openLanes && guess !== undefined && guess >= EARLY_LANES_RTT_MS ? wantedLanes(input.connections, guess, size) : 1;
    const firstLanes = firstAsk > 1 ? dest.openLanes!(firstAsk) : Promise.resolve(1);
    firstLanes.catch(() => {}); // a refused first channel fails below, through firstLane
    const firstLane = dest.openLanes?.(1);
    const early = rttProbe.then(async (ms) => {
      if (ms !== undefined) run.sawRtt(ms);
      const asked = run.rttMs !== undefined && run.rttMs >= EARLY_LANES_RTT_MS ? wantedLanes(input.connections, run.rttMs, size) : 1;
      const got = await firstLanes;
      if (asked <= firstAsk || !dest.openLanes) return { asked: firstAsk, got };
      return { asked, got: await dest.openLanes(asked) };
    });
    early.catch(() => {}); // a refused first channel fails below, through firstLane
    this.earlyLanes = early.catch(() => ({ asked: 1, got: 1 }));
    const timed = <T>(p: Promise<T>): Promise<T> => {
      const t0 = performance.now();
      return p.then((v) => {
        run.sawRtt(performance.now() - t0);
        return v;
      });
    };
    // With channels opened early and no journal of parallel segments here, the parts file is opened on every
    // lane in the same round trip as the stats (a parts file without its journal is never trusted anyway: the
    // first lane's truncation replaces it). It is used when the stats show a fresh upload over that many
    // lanes, and closed and removed otherwise.
    const speculate = firstAsk > 1 && !run.segments && !run.placed && !run.inPlace && !run.completedEarlier && !(await fileExists(this.plan.journalPath));
    await firstLane;
    const stats = Promise.all([
      run.folderReady ? Promise.resolve<RemoteStat | undefined>({ size: 0, isDirectory: true, mtimeMs: 0 }) : timed(dest.stat(dest.folder)),
      timed(dest.stat(paths.final)),
      speculate ? Promise.resolve(undefined) : timed(dest.stat(paths.parts)),
      timed(dest.stat(paths.partial)),
    ]);
    if (speculate) {
      const got = await firstLanes.catch(() => 1);
      const writers = Array.from({ length: got }, (_, lane) => dest.openWrite(paths.parts, { truncate: lane === 0, lane }));
      for (const w of writers) w.catch(() => {});
      this.spec = { writers, used: false, keepFile: false };
    }
    const [folderStat, finalStat, partsStat, partialStat] = await stats;
    if (!run.folderReady) {
      if (!folderStat?.isDirectory) {
        // The folder is new: the parts file opened speculatively had nowhere to go (those opens failed).
        if (this.spec) this.spec.keepFile = true; // nothing was created
        await this.dropSpec();
        await dest.mkdirp(dest.folder);
      }
      run.folderReady = true;
    }
    return { finalStat, partsStat, partialStat };
  }

  /** The package is already there without --force: an earlier run's to complete (no marker, same size), or refused. */
  private async foundFinal(finalStat: RemoteStat): Promise<void> {
    const markerThere = await this.dest.exists(this.paths.marker);
    if (!markerThere && finalStat.size === this.plan.size) {
      // An earlier run placed the zip but stopped before the marker: finish it after the checks.
      this.run.completedEarlier = true;
      return;
    }
    throw new InputError("REMOTE_EXISTS", msg("upload.remoteExists"), {
      hint: msg("upload.remoteExists.hint"),
      privateLines: this.input.verbose ? [this.paths.final] : [],
    });
  }

  /** A retry of an in-place upload: the final name is the partial; resume it after the same checks. */
  private async resumeInPlace(remote: RemoteState): Promise<void> {
    const { dest, paths } = this;
    await this.writeInPlace(await this.resumePoint(paths.final, remote.finalStat));
    if (remote.partialStat) await dest.remove(paths.partial).catch(() => {});
    if (remote.partsStat) await dest.remove(paths.parts).catch(() => {});
    this.run.placed = true;
  }

  /** Close a speculative parts file that was not used (and remove it, unless it now holds a renamed partial). */
  private async dropSpec(): Promise<void> {
    if (!this.spec || this.spec.used) return;
    const s = this.spec;
    this.spec = undefined;
    await Promise.all(s.writers.map((w) => w.then((x) => x.close()).catch(() => {})));
    if (!s.keepFile && !this.dest.connectionFailure) await this.dest.remove(this.paths.parts).catch(() => {});
  }

  /**
   * Where to go on writing the file an earlier attempt or run left at `path` (the partial, or the final name of an
   * in-place upload): its size when it is a prefix of this package, else 0, saying why it is not kept.
   */
  private async resumePoint(path: string, stat: RemoteStat | undefined): Promise<number> {
    const { dest, plan, input, emit } = this;
    const there = stat && !stat.isDirectory ? stat.size : 0;
    if (there === 0) return 0;
    if (there > plan.size) {
      emit({ type: "warn", code: "PARTIAL_DISCARDED", ...warnText("warn.partialLarger") });
      return 0;
    }
    if (await checkPrefix(dest, path, plan.packagePath, there, Boolean(input.verify), emit, input.signal, this.run.st.hasher)) return there;
    emit({ type: "warn", code: "PARTIAL_DISCARDED", ...warnText("warn.partialDiffers") });
    return 0;
  }

  /** Send what is missing into the partial (one channel) or the parts file (several); returns the path written. */
  private async sendData(remote: RemoteState): Promise<string> {
    const { run, input, dest, paths, plan } = this;
    const { size } = plan;
    const { partsStat, partialStat } = remote;
    const emit = this.emit;
    run.lanes = 1; // chosen again on every attempt (a new connection, maybe other limits)
    run.st.lanesAdded = 0;
    if (!run.segments) {
      const journal = await readJournal(plan.journalPath);
      if (journal && partsStat && journal.url === dest.url && journal.remotePath === paths.final && journal.size === size && journal.mtimeMs === plan.mtimeMs) {
        run.segments = journal.segments;
      } else if (partsStat) {
        // Parallel segments without their journal may hold holes: never trust them.
        await dest.remove(paths.parts);
      }
    }
    let workPath: string;
    let truncate = false;
    let preopened: Array<Promise<RemoteWriter>> | undefined;
    let segments = run.segments;
    if (segments) {
      workPath = paths.parts;
    } else {
      workPath = paths.partial;
      const from = await this.resumePoint(paths.partial, partialStat);
      truncate = from === 0;
      if (run.resumedFrom < 0) run.resumedFrom = from;
      run.lanes = await grantLanes(dest, wantedLanes(input.connections, run.rttMs ?? 0, size - from), input.connections !== undefined, this.earlyLanes, emit);
      if (run.lanes > 1 && from === 0) {
        segments = run.segments = splitSegments(0, size, run.lanes);
        workPath = paths.parts;
        truncate = true;
        if (this.spec && this.spec.writers.length === assignLanes(segments, run.lanes).length) {
          this.spec.used = true;
          preopened = this.spec.writers;
        } else {
          if (this.spec) this.spec.keepFile = true; // truncated again below
          await this.dropSpec();
        }
      } else if (run.lanes > 1) {
        // Resuming over several channels: the checked partial becomes the parts file, its prefix one finished
        // segment. The journal is written first: if the rename is lost, the partial is still there to resume.
        segments = run.segments = [{ start: 0, end: from, done: from }, ...splitSegments(from, size, run.lanes)];
        if (this.spec) this.spec.keepFile = true; // the partial is renamed over it
        await this.dropSpec();
        await writeJournal(plan.journalPath, { format: "scanbridge-upload-journal", url: dest.url, remotePath: paths.final, size, mtimeMs: plan.mtimeMs, segments });
        await dest.rename(paths.partial, paths.parts);
        workPath = paths.parts;
      } else {
        // One channel, in order: the checksum (when pack wrote none) is computed from these very reads.
        await run.st.hasher?.catchUp(from, input.signal);
        this.stageMarker();
        await this.checkSent(workPath, await sendSegments(run.st, dest, workPath, [{ start: from, end: size, done: from }], { truncate, lanes: 1, attempt: this.n, atDataEnd: this.atDataEnd }));
        return workPath;
      }
    }
    if (run.resumedFrom < 0) run.resumedFrom = segments.reduce((a, s) => a + (s.done - s.start), 0);
    const openBytes = segments.reduce((a, s) => a + (s.end - s.done), 0);
    if (!truncate && run.lanes <= 1) run.lanes = await grantLanes(dest, wantedLanes(input.connections ?? segments.filter((s) => s.done < s.end).length, run.rttMs ?? 0, openBytes), true, this.earlyLanes, emit);
    const journal: Journal = { format: "scanbridge-upload-journal", url: dest.url, remotePath: paths.final, size, mtimeMs: plan.mtimeMs, segments };
    await writeJournal(plan.journalPath, journal);
    this.stageMarker();
    // Automatic lane counts grow while the link shows it can carry more (the ramp); --connections fixes the count.
    const ramp = input.connections === undefined && run.rttMs !== undefined && dest.openLanes && !run.st.rampRefused ? { rttMs: run.rttMs, maxLanes: RAMP_MAX_LANES } : undefined;
    await this.checkSent(workPath, await sendSegments(run.st, dest, workPath, segments, { truncate, lanes: run.lanes, attempt: this.n, journal, atDataEnd: this.atDataEnd, writers: preopened, ramp }));
    return workPath;
  }

  /** The size the destination reported at close (every write acknowledged) must be the package's. */
  private async checkSent(workPath: string, there: number): Promise<void> {
    const size = this.plan.size;
    if (there === size) return;
    await this.dest.remove(workPath);
    this.run.segments = undefined;
    // Retryable: the next attempt starts over from nothing.
    throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", msg("upload.sizeMismatch", { got: there, expected: size }), {
      hint: msg("upload.sizeMismatch.hint"),
      retryable: true,
    });
  }

  /**
   * --verify (also of an in-place upload), or completing an earlier run's zip: read `workPath` back and compare it
   * with the package's SHA-256 (pack's, or the one hashed while sending). On a mismatch the remote file goes
   * (unless it is an earlier run's), and the local package is hashed to tell whose fault it is: a damaged package
   * is an input problem (PACKAGE_CORRUPT), not the server's (REMOTE_HASH_MISMATCH, retried).
   */
  private async verifyWork(workPath: string): Promise<void> {
    const { run, input, dest, plan, emit } = this;
    const { size } = plan;
    const expected = await run.packageHash();
    emit({ type: "step", id: "upload-verify", label: msg("step.uploadVerify") });
    const reader = await dest.openRead(workPath);
    let remote: { hash: Hash; bytes: number };
    try {
      let done = 0;
      remote = await hashRemoteRange(reader, 0, size, dest.window, (k) => {
        done += k;
        emit({ type: "progress", id: "upload-verify", done, total: size, unit: "bytes" });
      }, input.signal);
    } finally {
      await reader.close().catch(() => {});
    }
    const actual = remote.hash.digest("hex");
    if (remote.bytes === size && actual === expected) {
      emit({ type: "step-done", id: "upload-verify" });
      return;
    }
    emit({ type: "step-done", id: "upload-verify", ok: false });
    const local = (await hashFileRange(plan.packagePath, { signal: input.signal })).digest("hex");
    if (!run.completedEarlier) {
      await dest.remove(workPath);
      run.segments = undefined;
    }
    if (local !== expected) throw new InputError("PACKAGE_CORRUPT", msg("upload.packageCorrupt"), { hint: msg("upload.packageCorrupt.hint") });
    throw new RemoteVerificationError("REMOTE_HASH_MISMATCH", msg("upload.hashMismatch"), {
      hint: msg("upload.hashMismatch.hint"),
      details: { expected, actual },
    });
  }

  /**
   * With pack's checksum known up front, the marker's file is opened under a hidden name while the data is
   * sent (no round trip of its own), written once the data is complete, and renamed into place after the
   * package: it appears whole, and last. (An interrupted upload may leave it empty beside the partial; the next
   * run reuses it.)
   */
  private stageMarker(): void {
    if (!this.plan.claimed || this.run.inPlace) return;
    this.markerStaged = this.dest.openWrite(this.paths.markerPartial, { truncate: true }).catch(() => undefined);
  }

  /** Write the staged marker (write, fsync, size check and close in one round trip); resolves to whether it worked. */
  private async writeStagedMarker(): Promise<boolean> {
    const w = await this.markerStaged;
    if (!w) return false;
    const marker = this.run.marker;
    try {
      const [, n] = await Promise.all([w.write(marker, 0), w.finish()]);
      return n === marker.length;
    } catch {
      await w.close().catch(() => {});
      return false;
    }
  }

  /** The marker, last: the staged one renamed into place when it was written, else written now. */
  private async placeMarker(): Promise<void> {
    const { dest, paths } = this;
    const staged = this.markerWritten; // set by finalise or at the end of the data
    this.markerWritten = undefined;
    if (staged && (await staged) && !this.run.inPlace) {
      await dest.rename(paths.markerPartial, paths.marker);
    } else {
      await dest.writeSmall(paths.marker, this.run.marker);
      if (this.markerStaged) await dest.remove(paths.markerPartial).catch(() => {});
    }
    this.markerStaged = undefined;
  }

  private async writeInPlace(from: number): Promise<void> {
    const { run, input, dest, paths, plan } = this;
    await run.st.hasher?.catchUp(from, input.signal);
    const there = await sendSegments(run.st, dest, paths.final, [{ start: from, end: plan.size, done: from }], { truncate: from === 0, lanes: 1, attempt: this.n });
    if (there !== plan.size) throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", msg("upload.wrongSize"), { retryable: true });
    if (input.verify) await this.verifyWork(paths.final);
  }

  /** Move the checked file into place (or, where renames are forbidden, write the final name directly). */
  private async finalise(workPath: string, replacing: boolean): Promise<void> {
    const { run, input, dest, paths } = this;
    // The old package must not look complete while it is replaced.
    if (replacing && input.force && !this.oldMarkerRemoved) await dest.remove(paths.marker);
    this.emit({ type: "step", id: "upload-finish", label: msg("step.uploadFinish") });
    // The staged marker is written after the last data (beside the rename: one round trip for both).
    if (this.markerStaged && !this.markerWritten) this.markerWritten = this.writeStagedMarker();
    try {
      const r = await dest.rename(workPath, paths.final);
      run.placement = r.atomic ? "atomic-rename" : "rename";
    } catch (err) {
      if (!(err instanceof NetworkError && err.code === "REMOTE_PERMISSION_DENIED")) throw err;
      // Some drop boxes forbid renames: write the final name directly, then verify it the same way.
      this.emit({ type: "warn", code: "RENAME_FORBIDDEN", ...warnText("warn.renameForbidden") });
      run.placement = "in-place";
      run.inPlace = true;
      await dest.remove(paths.marker).catch(() => {});
      await this.writeInPlace(0);
      await dest.remove(workPath).catch(() => {});
    }
    this.emit({ type: "step-done", id: "upload-finish" });
  }
}

/**
 * Upload a package: to `.<Name>.zip.partial` (resuming what is there), check size (and SHA-256 with verify),
 * rename into place, then write `<Name>.zip.sha256` last as the completion marker; write the receipt.
 */
export async function uploadPackage(input: UploadInput): Promise<UploadResult> {
  const now = input.now ?? (() => new Date());
  const started = now();
  const emit = input.emit;
  const plan = await planUpload(input.packagePath);
  // Read while the network is waited on, not after the last byte.
  const summary = input.summary ?? readPackageSummary(plan.packagePath);
  const run = new UploadRun(input, plan);

  const { attempts } = await withRetries(async (n) => new UploadAttempt(run, await input.connect(), n).go(), {
    policy: input.retry ?? defaultRetryPolicy,
    signal: input.signal,
    onRetry: ({ attempt: a, delayMs, error }) => {
      const why = error instanceof ScanbridgeError ? error.text : (error as Error)?.message ?? String(error);
      emit({ type: "warn", code: "UPLOAD_RETRY", ...warnText("warn.uploadRetry", { attempt: a, why, seconds: (delayMs / 1000).toFixed(1) }) });
    },
  }).catch((err) => {
    throw input.signal?.aborted ? new InterruptedError(msg("upload.interrupted")) : err;
  });

  const finished = now();
  const receipt = await receiptFor(plan, await summary, {
    destination: run.destUrl, remotePath: run.remoteFinal, sha256: run.sha256, verified: input.verify || run.completedEarlier ? "sha256" : "size",
    attempts, resumedFrom: run.resumedFrom, startedAt: started, finishedAt: finished,
  });
  const receiptPath = input.writeReceipt !== false ? await writeReceipt(plan, receipt) : undefined;
  return {
    receipt,
    receiptPath,
    remotePath: run.remoteFinal,
    size: plan.size,
    sha256: run.sha256,
    bytesSent: run.st.bytesSent,
    resumedFrom: Math.max(0, run.resumedFrom),
    attempts,
    verified: receipt.verified,
    placement: run.placement,
    durationMs: finished.getTime() - started.getTime(),
    completedEarlierUpload: run.completedEarlier,
    lanes: run.lanes + run.st.lanesAdded,
    lanesAdded: run.st.lanesAdded,
    ...(run.rttMs !== undefined ? { rttMs: Math.round(run.rttMs * 10) / 10 } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Finalise: receipt, prefix and read-back checks.

/**
 * Counts and studies for the coordinators' notification (no names), from the package's own manifest; undefined
 * when it cannot be read (the upload does not depend on it). The zip reader is imported only here.
 */
export async function readPackageSummary(packagePath: string): Promise<Receipt["summary"]> {
  try {
    const { readManifestFromZip, summaryFromManifest } = await import("../pack/read-manifest.js");
    return summaryFromManifest(await readManifestFromZip(packagePath));
  } catch {
    return undefined;
  }
}

async function receiptFor(plan: UploadPlan, summary: Receipt["summary"], r: {
  destination: string; remotePath: string; sha256: string; verified: "size" | "sha256"; attempts: number; resumedFrom: number; startedAt: Date; finishedAt: Date;
}): Promise<Receipt> {
  return {
    format: "scanbridge-receipt",
    formatVersion: 1,
    package: plan.zipName,
    destination: r.destination,
    remotePath: r.remotePath,
    size: plan.size,
    sha256: r.sha256,
    verified: r.verified,
    attempts: r.attempts,
    resumedFrom: r.resumedFrom > 0 ? r.resumedFrom : undefined,
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt.toISOString(),
    ...(summary ? { summary } : {}),
  };
}

async function writeReceipt(plan: UploadPlan, receipt: Receipt): Promise<string> {
  const receiptPath = join(dirname(plan.packagePath), receiptNameFor(plan.zipName));
  try {
    const tmp = `${receiptPath}.tmp-${randomBytes(4).toString("hex")}`;
    // The receipt names the package, i.e. the patient: readable by the user only.
    await writeFile(tmp, JSON.stringify(receipt, null, 2) + "\n", { mode: 0o600 });
    await rename(tmp, receiptPath);
  } catch (err) {
    throw describeIoError(err, msg("what.receipt"));
  }
  return receiptPath;
}

/**
 * Whether the first `length` bytes at the destination are this package's: by SHA-256 with --verify (the local
 * prefix hash is then handed to `hasher`, so those bytes are not read again), else by the last 256 KiB.
 */
async function checkPrefix(dest: Destination, remotePath: string, localPath: string, length: number, byHash: boolean, emit: Emit, signal?: AbortSignal, hasher?: InlineHasher): Promise<boolean> {
  const reader = await dest.openRead(remotePath);
  try {
    if (byHash) {
      emit({ type: "step", id: "upload-resume-check", label: msg("step.uploadResumeCheck") });
      let done = 0;
      const remote = await hashRemoteRange(reader, 0, length, dest.window, (k) => {
        done += k;
        emit({ type: "progress", id: "upload-resume-check", done, total: length, unit: "bytes" });
      }, signal);
      const local = await hashFileRange(localPath, { end: length, signal });
      emit({ type: "step-done", id: "upload-resume-check" });
      const same = remote.bytes === length && remote.hash.digest("hex") === local.copy().digest("hex");
      if (same) hasher?.adopt(local, length);
      return same;
    }
    // Without --verify, compare the last bytes of the partial: cheap, and catches a different package of the same name.
    const tail = Math.min(length, 256 * 1024);
    const remote = await reader.read(tail, length - tail);
    const fh = await open(localPath, "r");
    try {
      const local = Buffer.alloc(tail);
      await fh.read(local, 0, tail, length - tail);
      return remote.equals(local);
    } finally {
      await fh.close();
    }
  } finally {
    await reader.close().catch(() => {});
  }
}
