/**
 * The zip format's record signatures (PKWARE APPNOTE 4.3), little-endian as they are read and written: the one
 * list for the writer (`pack/zip.ts`), the reader (`ingest/zip-reader.ts`) and the format sniffer (`ingest/archives.ts`).
 */
export const SIG_LOCAL = 0x04034b50;
export const SIG_CENTRAL = 0x02014b50;
/** Data descriptor (optional signature before the CRC-32 and sizes that follow streamed data). */
export const SIG_DESCRIPTOR = 0x08074b50;
/** End of central directory record. */
export const SIG_END = 0x06054b50;
/** Zip64 end of central directory record. */
export const SIG_END64 = 0x06064b50;
/** Zip64 end of central directory locator. */
export const SIG_LOCATOR64 = 0x07064b50;
