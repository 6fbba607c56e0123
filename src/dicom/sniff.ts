/** Bytes needed by sniffDicom. */
export const SNIFF_BYTES = 132;

const VRS = new Set(["AE","AS","AT","CS","DA","DS","DT","FL","FD","IS","LO","LT","OB","OD","OF","OL","OV","OW","PN","SH","SL","SQ","SS","ST","SV","TM","UC","UI","UL","UN","UR","US","UT","UV"]);

/**
 * Whether a file is Part 10 DICOM by its magic: "DICM" at offset 128, after the 128-byte preamble. The preamble is
 * free for applications (PS3.10 7.1) and some writers put "MZ" or "PK" there; the magic wins over those, on the
 * sending and the receiving side alike.
 */
export function hasDicomMagic(head: Buffer): boolean {
  return head.length >= 132 && head.toString("latin1", 128, 132) === "DICM";
}

/**
 * Whether the head of a file is a Windows program: "MZ" and the PE header its e_lfanew (offset 0x3C) points to,
 * within `head`. A DICOM file whose free preamble merely starts with "MZ" is not one; a PE/DICOM polyglot
 * (CVE-2019-11687) is, when its PE header lies in the bytes read (verify reads 4 KiB).
 */
export function isPortableExecutable(head: Buffer): boolean {
  if (head.length < 0x40 || head[0] !== 0x4d || head[1] !== 0x5a) return false;
  const peAt = head.readUInt32LE(0x3c);
  return peAt >= 0x40 && peAt + 4 <= head.length && head.readUInt32BE(peAt) === 0x50450000;
}

/**
 * Whether the first bytes of a file look like DICOM: the "DICM" marker at offset 128 (Part 10), or, for files
 * without a preamble (old CDs, "IM00001"), a plausible first data element of group 0x0002 or 0x0008 in
 * explicit or implicit VR little endian.
 */
export function sniffDicom(head: Buffer): boolean {
  if (hasDicomMagic(head)) return true;
  if (head.toString("latin1", 0, 4) === "DICM") return true;
  if (head.length < 8) return false;
  const group = head.readUInt16LE(0);
  const element = head.readUInt16LE(2);
  const vr = head.toString("latin1", 4, 6);
  // Explicit VR big endian without meta (retired, still on old discs): group 0008 written high byte first.
  if (head.readUInt16BE(0) === 0x0008 && VRS.has(vr)) return true;
  if (group !== 0x0002 && group !== 0x0008) return false;
  if (VRS.has(vr)) return true;
  // Implicit VR: a 4-byte length that is small and even for the usual first elements.
  const len = head.readUInt32LE(4);
  return element <= 0x0020 && len > 0 && len < 1024 && len % 2 === 0;
}
