import anyAscii from "any-ascii";
import type { DicomHeader, PatientSummary, PersonName } from "./types.js";

/*
 * Patient identity: does the name the sender typed (--patient) belong to the DICOM name, and do all files belong to
 * one patient?
 *
 * Tolerant name matching (matchPatientName). Both sides are folded: Unicode NFKC, diacritics stripped (Latin, Greek
 * and Cyrillic accents, Hebrew points, Arabic harakat; kana voicing is kept), ß→ss, ł→l, ø→o, æ→ae..., lower case,
 * katakana folded to hiragana, punctuation and spacing ignored (apostrophes join, other punctuation separates words);
 * German ä/ö/ü are also tried as ae/oe/ue on both sides ("Mueller" = "MÜLLER"). The DICOM name is taken group by group (alphabetic,
 * ideographic, phonetic); each group's "^" components are family, given, middle, prefix, suffix. The given text
 * matches a group when its letters, with spaces removed, can be cut into DICOM words (each used once, in any order),
 * and either
 *   A. every part of the given text is a DICOM word, covering at least one family word and one given-name word
 *      (or two words when the DICOM name has no given-name component): "Jose Alvarez" = "ÁLVAREZ NÚÑEZ^JOSÉ",
 *      "山田太郎" = "山田^太郎", "Tarou Yamada" = "Yamada^Tarou"; or
 *   B. every DICOM family and given word appears in the given text, which may add whole words of its own, and the
 *      DICOM name has at least two such words: "José María Álvarez" = "ALVAREZ^JOSE".
 * When exactly one side is in Latin letters, the other side is also compared transliterated to ASCII (any-ascii),
 * so "Giorgos Papadopoulos" matches "Παπαδόπουλος^Γιώργος" and "Yamada Tarou" matches the phonetic "やまだ^たろう".
 * A different first or family name is rejected: "Maria Alvarez" ≠ "Alvarez^Jose", "Alvarez" alone ≠ "Alvarez^Jose".
 */

const LATIN_SPECIALS: Record<string, string> = {
  ß: "ss", æ: "ae", œ: "oe", ø: "o", đ: "d", ð: "d", ł: "l", ı: "i", þ: "th", ŋ: "n", ħ: "h", ŧ: "t", ĸ: "k",
};

const UMLAUTS: Record<string, string> = { ä: "ae", ö: "oe", ü: "ue", Ä: "AE", Ö: "OE", Ü: "UE" };

/** Latin/Greek/Cyrillic combining diacritics, Hebrew points and Arabic harakat. */
const DIACRITICS = /[\u0300-\u036f\u0591-\u05c7\u064b-\u065f\u0670]/gu;

/** Greek digraphs any-ascii spells letter by letter; passports write them so (ELOT 743). */
const GREEK_DIGRAPHS: ReadonlyArray<[RegExp, string]> = [[/ου/g, "ou"]];

/** Fold text for comparison: compatibility forms, no diacritics, lower case, katakana as hiragana. */
function foldText(s: string, umlautsAsE = false): string {
  if (umlautsAsE) s = s.normalize("NFC").replace(/[äöüÄÖÜ]/g, (c) => UMLAUTS[c]!);
  // Only diacritics are dropped; kana voicing marks and Thai vowel signs are letters of the name.
  const base = s.normalize("NFKC").normalize("NFD").replace(DIACRITICS, "").toLowerCase();
  let out = "";
  for (const ch of base) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x30a1 && cp <= 0x30f6) out += String.fromCodePoint(cp - 0x60);
    else out += LATIN_SPECIALS[ch] ?? ch;
  }
  return out.normalize("NFC");
}

/** Split folded text into words: apostrophes join ("O'Brien" → "obrien"), other non-letters separate. */
function splitWords(folded: string): string[] {
  return folded
    .replace(/['’`´ʼ]/gu, "")
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w !== "");
}

function isAsciiWords(words: string[]): boolean {
  return words.every((w) => /^[a-z0-9]+$/.test(w));
}

function transliterate(s: string): string {
  let out = s;
  for (const [re, to] of GREEK_DIGRAPHS) out = out.replace(re, to);
  return anyAscii(out).toLowerCase();
}

const MAX_NAME_WORDS = 12;
const MAX_GIVEN_WORDS = 16;

interface NameWords {
  words: string[];
  /** Component index of each word: 0 family, 1 given, 2 middle, 3 prefix, 4 suffix. */
  comps: number[];
}

function groupWords(group: string, fold: (s: string) => string): NameWords {
  const words: string[] = [];
  const comps: number[] = [];
  group.split("^").forEach((comp, i) => {
    for (const w of splitWords(fold(comp))) {
      words.push(w);
      comps.push(Math.min(i, 4));
    }
  });
  // Bounded so the matching search stays small (2^12 word subsets); real names have far fewer words.
  return { words: words.slice(0, MAX_NAME_WORDS), comps: comps.slice(0, MAX_NAME_WORDS) };
}

/** Whether given words match one group's words under rules A and B above. */
function matchWords(given: string[], name: NameWords): boolean {
  if (given.length === 0 || name.words.length === 0) return false;
  const text = given.join("");
  const tokenEnds = new Map<number, number>(); // token start offset -> end offset
  let off = 0;
  for (const g of given) {
    tokenEnds.set(off, off + g.length);
    off += g.length;
  }
  const familyBits = bitsOf(name, (c) => c === 0);
  const givenBits = bitsOf(name, (c) => c === 1);
  const coreCount = popcount(familyBits) + popcount(givenBits);
  const ruleA = (mask: number): boolean => {
    if (familyBits === 0) return (mask & givenBits) === givenBits && givenBits !== 0;
    if ((mask & familyBits) === 0) return false;
    if (givenBits !== 0) return (mask & givenBits) !== 0;
    return popcount(mask & familyBits) >= Math.min(2, popcount(familyBits));
  };
  const ruleB = (mask: number): boolean => coreCount >= 2 && (mask & (familyBits | givenBits)) === (familyBits | givenBits);

  const seen = new Set<string>();
  const visit = (pos: number, mask: number, extras: boolean): boolean => {
    const key = `${pos}:${mask}:${extras ? 1 : 0}`;
    if (seen.has(key)) return false;
    seen.add(key);
    if (pos === text.length) return (!extras && ruleA(mask)) || ruleB(mask);
    for (let i = 0; i < name.words.length; i++) {
      const bit = 1 << i;
      if (mask & bit) continue;
      const w = name.words[i]!;
      if (text.startsWith(w, pos) && visit(pos + w.length, mask | bit, extras)) return true;
    }
    const end = tokenEnds.get(pos);
    return end !== undefined && visit(end, mask, true);
  };
  return visit(0, 0, false);
}

function bitsOf(name: NameWords, pick: (comp: number) => boolean): number {
  let bits = 0;
  name.comps.forEach((c, i) => {
    if (pick(c)) bits |= 1 << i;
  });
  return bits;
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n; x !== 0; x &= x - 1) c++;
  return c;
}

function groupsOf(name: PersonName): string[] {
  return [name.alphabetic, name.ideographic, name.phonetic].filter((g): g is string => g !== undefined && g.trim() !== "");
}

/** Whether free text typed by the sender (e.g. "José Álvarez") names the patient of a DICOM Person Name, under the rules above. */
export function matchPatientName(given: string, name: PersonName): boolean {
  const givenWords = splitWords(foldText(given));
  // Nothing to match, or not a name (a pasted paragraph): never a match.
  if (givenWords.length === 0 || givenWords.length > MAX_GIVEN_WORDS) return false;
  const givenAscii = isAsciiWords(givenWords);
  for (const group of groupsOf(name)) {
    const native = groupWords(group, foldText);
    if (matchWords(givenWords, native)) return true;
    const groupAscii = isAsciiWords(native.words);
    if (givenAscii && !groupAscii && matchWords(givenWords, groupWords(group, (s) => transliterate(foldText(s))))) return true;
    if (!givenAscii && groupAscii && matchWords(splitWords(transliterate(foldText(given))), native)) return true;
    if (matchWords(splitWords(foldText(given, true)), groupWords(group, (s) => foldText(s, true)))) return true;
  }
  return false;
}

/** Whether two DICOM Person Names can be the same person: equal when folded, or one matches the other tolerantly. */
export function matchPersonNames(a: PersonName, b: PersonName): boolean {
  // The scan keeps one object per distinct name: the files of one patient mostly compare a name with itself.
  if (a === b) return true;
  const key = (n: PersonName): string => splitWords(foldText(groupsOf(n).join(" "))).join(" ");
  if (key(a) === key(b)) return true;
  return groupsOf(a).some((g) => matchPatientName(g.replace(/[\^=]/g, " "), b)) || groupsOf(b).some((g) => matchPatientName(g.replace(/[\^=]/g, " "), a));
}

/** One DICOM file and its header, as grouped and summarised. */
export interface DicomEntry {
  path: string;
  header: DicomHeader;
}

/** The files of one patient. */
export interface PatientGroup {
  patient: PatientSummary;
  paths: string[];
}

function normalizeId(id: string | undefined): string | undefined {
  const v = id?.trim();
  return v ? v : undefined;
}

function normalizeDate(d: string | undefined): string | undefined {
  const v = d?.replace(/\D/g, "");
  return v ? v : undefined;
}

function hasName(n: PersonName | undefined): n is PersonName {
  return n !== undefined && groupsOf(n).length > 0;
}

interface Cluster {
  id?: string;
  /** Every Patient ID seen in the cluster, in order of discovery. */
  ids: string[];
  birthDate?: string;
  name?: PersonName;
  sex?: string;
  paths: string[];
}

function fits(c: Cluster, id: string | undefined, birthDate: string | undefined, name: PersonName | undefined): boolean {
  if (birthDate && c.birthDate && birthDate !== c.birthDate) return false;
  if (hasName(name) && hasName(c.name) && !matchPersonNames(name, c.name)) return false;
  if (id && c.id && !c.ids.includes(id)) {
    // Another hospital's Patient ID: the same person only when both name and birth date are there and agree.
    return Boolean(birthDate && c.birthDate && hasName(name) && hasName(c.name));
  }
  return true;
}

/**
 * Group DICOM files by patient: two files are the same patient when Patient ID, name (folded, tolerant) and birth
 * date agree; a value missing on either side does not split. Different Patient IDs are one person with two IDs
 * (scans from two hospitals) when name and birth date are both present and agree. DICOMDIR files are left out.
 * Largest group first.
 */
export function groupPatients(entries: DicomEntry[]): PatientGroup[] {
  const files = entries
    .filter((e) => !e.header.isDicomdir)
    .map((e) => ({
      path: e.path,
      id: normalizeId(e.header.patientId),
      birthDate: normalizeDate(e.header.patientBirthDate),
      name: hasName(e.header.patientName) ? e.header.patientName : undefined,
      sex: e.header.patientSex?.trim() || undefined,
    }));
  // Complete entries first, so that a file missing a value joins the patient it fits rather than founding one.
  const completeness = (f: (typeof files)[number]): number => (f.id ? 1 : 0) + (f.birthDate ? 1 : 0) + (f.name ? 1 : 0);
  files.sort((a, b) => completeness(b) - completeness(a) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const clusters: Cluster[] = [];
  for (const f of files) {
    let c = clusters.find((x) => fits(x, f.id, f.birthDate, f.name));
    if (!c) {
      c = { ids: [], paths: [] };
      clusters.push(c);
    }
    c.id ??= f.id;
    if (f.id && !c.ids.includes(f.id)) c.ids.push(f.id);
    c.birthDate ??= f.birthDate;
    c.sex ??= f.sex;
    // Keep the richest name (most component groups) to show.
    if (f.name && (!c.name || groupsOf(f.name).length > groupsOf(c.name).length)) c.name = f.name;
    c.paths.push(f.path);
  }
  return clusters
    .map((c) => {
      const patient: PatientSummary = { files: c.paths.length };
      if (c.name) patient.name = c.name;
      if (c.id) patient.id = c.id;
      if (c.ids.length > 1) patient.ids = [...c.ids];
      if (c.birthDate) patient.birthDate = c.birthDate;
      if (c.sex) patient.sex = c.sex;
      return { patient, paths: c.paths.sort() };
    })
    .sort((a, b) => b.paths.length - a.paths.length);
}

/** Result of the wrong-patient guard. `unverified`: no DICOM file carries a name, so the given name could not be checked. */
export interface PatientCheck {
  ok: boolean;
  reason?: "multiple-patients" | "name-mismatch";
  groups: PatientGroup[];
  unverified?: boolean;
}

/** Check that all DICOM files belong to one patient and that `given` (the --patient name) matches that patient's name. */
export function checkPatient(given: string, entries: DicomEntry[]): PatientCheck {
  const groups = groupPatients(entries);
  if (groups.length > 1) return { ok: false, reason: "multiple-patients", groups };
  const name = groups[0]?.patient.name;
  if (!name) return groups.length === 0 ? { ok: true, groups } : { ok: true, groups, unverified: true };
  return matchPatientName(given, name) ? { ok: true, groups } : { ok: false, reason: "name-mismatch", groups };
}
