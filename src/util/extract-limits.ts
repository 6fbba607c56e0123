/**
 * The ONE set of safe-extraction limits, shared by everything that unpacks an archive it did not make: `pack
 * --expand-archives` (src/pack/expand.ts), `verify` and `watch` intake (zips, nested zips, .7z/.rar/.tar).
 * A zip bomb is refused by the same numbers wherever it turns up.
 */
export interface ExtractLimits {
  /** Entries in one archive (and files after nested archives are unpacked). */
  maxEntries: number;
  /** Total uncompressed bytes. */
  maxUnpackedBytes: number;
  /** Uncompressed/compressed ratio, applied to entries over 1 MiB and to the whole over 16 MiB. */
  maxRatio: number;
  /** How deep archives inside archives are unpacked (a zip in a zip is depth 2). */
  maxDepth: number;
}

/** Defaults: generous for a real multi-GB study, far below what a bomb declares. */
export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = { maxEntries: 100_000, maxUnpackedBytes: 100e9, maxRatio: 100, maxDepth: 3 };

const ONE_MIB = 1024 * 1024;

/** The ratio of one entry when it breaks the limit (entries up to 1 MiB never do), else undefined. */
export function entryRatioExceeded(uncompressed: number, compressed: number, limits: Pick<ExtractLimits, "maxRatio">): number | undefined {
  if (uncompressed <= ONE_MIB) return undefined;
  const ratio = uncompressed / Math.max(compressed, 1);
  return ratio > limits.maxRatio ? ratio : undefined;
}

/** The overall ratio of an archive when it breaks the limit (archives up to 16 MiB unpacked never do), else undefined. */
export function totalRatioExceeded(uncompressed: number, compressed: number, limits: Pick<ExtractLimits, "maxRatio">): number | undefined {
  if (uncompressed <= 16 * ONE_MIB) return undefined;
  const ratio = uncompressed / Math.max(compressed, 1);
  return ratio > limits.maxRatio ? ratio : undefined;
}
