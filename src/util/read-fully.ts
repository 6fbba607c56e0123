/** What a positional read needs of an open file: a FileHandle, or an adapter with the same `read`. */
export interface PositionalReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/**
 * Fill `buf` with the file's bytes from `position`, reading on after short reads until it is full or the file
 * ends; returns `buf` cut to the bytes read (shorter than `buf` only at the end of the file). The project's one
 * such loop: the zip reader, the DICOM header reader, pack's scan, e-mail and the local destination use it.
 */
export async function readFully(fh: PositionalReader, buf: Buffer, position: number): Promise<Buffer> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}
