// Process-wide settings of the scanbridge executable, imported first by bin/scanbridge.js (so before any other
// module is loaded: set later, at a command's start, the young generation has already grown and a 5 GB pack peaked
// at 160-165 MB instead of 131 MB). Tests that call main() in their own process do not load it. `watch` turns V8's
// own growth back on (defaultHeapGrowth below).
import { setFlagsFromString } from "node:v8";

// Memory (issue 15: peak RSS flat from 100 MB to 5 GB). What scanbridge allocates in bulk is buffers, which live
// outside the JS heap; its JS objects are small. Yet by default V8 grows the young generation to 16 MiB per
// semi-space, and lets the old generation grow up to several times what is live before collecting it: in a
// 10,000-file pack that was 30-45 MB of peak RSS (store: 182 MB against 142 MB with both flags below) and no speed.
// - the young generation keeps its first size (1 MiB per semi-space);
// - the old generation is collected once it is 30% over what was live after the last collection.
// V8 reads both each time it would grow a space, so setting them at run time takes effect (unlike
// --max-semi-space-size, which only a command line could set).
setFlagsFromString("--semi-space-growth-factor=1");
setFlagsFromString("--heap-growing-percent=30");

/**
 * V8's own growth again, for `watch` (called at its start): it allocates faster than pack and holds little, so a
 * small young generation only costs it collections (0.80 s of CPU against 0.74 s for a 64 MB package in one A/B).
 */
export function defaultHeapGrowth(): void {
  setFlagsFromString("--semi-space-growth-factor=2");
  setFlagsFromString("--heap-growing-percent=0");
}
