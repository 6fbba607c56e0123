import { createHash } from "node:crypto";
import anyAscii from "any-ascii";

/** Longest folder name in UTF-8 bytes; leaves room for ".zip.sha256", ".partial" and a date suffix under 255. */
export const MAX_NAME_BYTES = 180;

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
// Control characters, and bidi overrides that can disguise a name or an extension (U+202E "RLO" tricks).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;
// Path separators and characters Windows forbids in names.
const RESERVED = /[<>:"/\\|?*]/g;

function capBytes(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, "utf8") <= maxBytes) return s;
  // Cut on grapheme boundaries so no character (or combining sequence) is split.
  const seg = new Intl.Segmenter(undefined, { granularity: "grapheme" });
  let out = "";
  for (const { segment } of seg.segment(s)) {
    if (Buffer.byteLength(out + segment, "utf8") > maxBytes) break;
    out += segment;
  }
  return out;
}

/**
 * Make one path component safe on Windows, macOS and Linux: NFC, no control or bidi characters, no reserved
 * characters or names, no leading dots, no trailing dots or spaces, capped length. May return "".
 */
export function sanitizeComponent(input: string, maxBytes = MAX_NAME_BYTES): string {
  let s = input.normalize("NFC").replace(CONTROL, "").replace(RESERVED, " ");
  s = s.replace(/\s+/g, " ").trim();
  s = s.replace(/^[.\s]+/, "");
  s = capBytes(s, maxBytes);
  s = s.replace(/[.\s]+$/, "");
  if (WINDOWS_RESERVED.test(s)) s = s.replace(/^([^.]*)/, "$1_");
  return s;
}

/** Transliterate to plain ASCII letters, digits and a few separators; "" when nothing Latin remains. */
export function transliterate(input: string): string {
  return anyAscii(input.normalize("NFC"))
    .replace(/:[a-z0-9_+-]+:/g, " ") // any-ascii spells emoji as :name:
    .replace(/[^A-Za-z0-9 ._,'()-]/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

/** Short stable name for a name that has no Latin transliteration. */
export function hashName(input: string): string {
  return "patient-" + createHash("sha256").update(input.normalize("NFC"), "utf8").digest("hex").slice(0, 10);
}

/** The package folder name for a patient, or "" when nothing safe is left. */
export function folderNameFor(patient: string, opts: { ascii: boolean }): string {
  const safe = sanitizeComponent(patient);
  if (!opts.ascii || safe === "") return safe;
  const ascii = sanitizeComponent(transliterate(safe));
  return /[A-Za-z0-9]/.test(ascii) ? ascii : hashName(safe);
}

/** A file name inside the package, made safe like the folder name (ASCII when asked); never "". */
export function entryNameFor(component: string, opts: { ascii: boolean }): string {
  const safe = sanitizeComponent(component, 200);
  const out = opts.ascii ? sanitizeComponent(transliterate(safe), 200) : safe;
  if (out !== "") return out;
  return safe !== "" ? hashName(safe) : "_";
}
