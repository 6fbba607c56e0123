/** Bytes needed by sniffDicom. */
export const SNIFF_BYTES = 132;

const VRS = new Set(["AE","AS","AT","CS","DA","DS","DT","FL","FD","IS","LO","LT","OB","OD","OF","OL","OV","OW","PN","SH","SL","SQ","SS","ST","SV","TM","UC","UI","UL","UN","UR","US","UT","UV"]);

/**
 * Whether the first bytes of a file look like DICOM: the "DICM" marker at offset 128 (Part 10), or, for files
 * without a preamble (old CDs, "IM00001"), a plausible first data element of group 0x0002 or 0x0008 in
 * explicit or implicit VR little endian.
 */
export function sniffDicom(head: Buffer): boolean {
  if (head.length >= 132 && head.toString("latin1", 128, 132) === "DICM") return true;
  if (head.toString("latin1", 0, 4) === "DICM") return true;
  if (head.length < 8) return false;
  const group = head.readUInt16LE(0);
  const element = head.readUInt16LE(2);
  if (group !== 0x0002 && group !== 0x0008) return false;
  const vr = head.toString("latin1", 4, 6);
  if (VRS.has(vr)) return true;
  // Implicit VR: a 4-byte length that is small and even for the usual first elements.
  const len = head.readUInt32LE(4);
  return element <= 0x0020 && len > 0 && len < 1024 && len % 2 === 0;
}
