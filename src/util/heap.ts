import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * V8 heap settings at run time (v8.setFlagsFromString). V8 reads these each time it would grow a space, so they take
 * effect after start-up (unlike --max-semi-space-size, which only a command line could set). A worker thread's start
 * undoes them (observed with Node 20.20; Node appears to apply the process's V8 options again for each new isolate):
 * a worker that should keep them calls setFlagsFromString(appliedHeapFlags()) first (src/pack/piece-loader.ts does).
 */

/**
 * What scanbridge allocates in bulk is buffers, which live outside the JS heap; its JS objects are small. Yet by
 * default V8 grows the young generation to 16 MiB per semi-space and lets the old generation grow to several times
 * what is live before collecting it. In a 10,000-file, 5 GB pack that was 30 MB of peak RSS (store: 160-165 MB with
 * V8's growth, 127-129 MB with these, also set in the reading thread). So:
 * - the young generation keeps its first size (1 MiB per semi-space);
 * - the old generation is collected once it is 30% over what was live after the last collection.
 */
export const LEAN_HEAP = "--semi-space-growth-factor=1 --heap-growing-percent=30";
/** V8's own growth of the old generation (0: its default, from its own heuristics). */
export const V8_OLD_GENERATION_GROWTH = "--heap-growing-percent=0";
/** V8's own growth (`watch` allocates faster and holds little: a small young generation only costs it collections). */
export const V8_HEAP_GROWTH = `--semi-space-growth-factor=2 ${V8_OLD_GENERATION_GROWTH}`;

/**
 * Every V8 flag scanbridge may set at run time, at the values a new process starts with. V8 accepts a code cache only
 * under the flags it was made with: the bundle's training run (scripts/bundle.mjs) sets these before making it.
 */
export const V8_START_FLAGS = `${V8_HEAP_GROWTH} --no-expose-gc`;

let applied = "";

/** Apply heap flags to this process (later flags win over earlier ones). */
export function setHeapFlags(flags: string): void {
  setFlagsFromString(flags);
  applied = `${applied} ${flags}`.trim();
}

/** Every heap flag applied so far, in order ("" when none): what a new worker thread must apply again. */
export function appliedHeapFlags(): string {
  return applied;
}

/**
 * Dead buffers are freed only when V8 collects their small JS objects, and V8 starts a collection for buffer memory
 * only after tens of MB of it have been allocated since the last one. Deflating allocates its output afresh (zlib's
 * 64 KiB chunks, short-lived: copied into the zip's output and dropped), so up to 35 MB of dead output sat in the
 * process over a long pack. `youngCollector(bytes)` returns a function to call with the bytes of such buffers as they
 * are dropped: every `bytes` it runs a young-generation collection (about a millisecond), which frees them.
 * Where V8's collector cannot be reached, it does nothing.
 */
export function youngCollector(bytes: number): (dropped: number) => void {
  const gc = v8Gc();
  if (!gc) return () => {};
  let since = 0;
  return (dropped) => {
    since += dropped;
    if (since < bytes) return;
    since = 0;
    gc({ type: "minor" });
  };
}

type Gc = (opts?: { type?: "minor" | "major" }) => void;
let gcFn: Gc | null | undefined;

/** V8's gc() (the flag set at run time; the function taken from a new context, where V8 installs it). */
function v8Gc(): Gc | null {
  if (gcFn !== undefined) return gcFn;
  try {
    setFlagsFromString("--expose-gc");
    const fn = runInNewContext("gc") as unknown;
    gcFn = typeof fn === "function" ? (fn as Gc) : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}
