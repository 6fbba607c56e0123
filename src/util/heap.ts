import { setFlagsFromString } from "node:v8";

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
