/*
 * Media: capacities and the PS3.11 general-purpose Application Profile that fits the content. Files are never
 * re-encoded, so the profile is chosen from the transfer syntaxes the delivery already has.
 */

/** The medium a file-set is made for. */
export type Medium = "cd" | "dvd" | "usb";

/** Usable capacity of each medium in bytes (usb: none; --max-size sets one). */
export const MEDIUM_CAPACITY: Record<Medium, number | undefined> = {
  cd: 700 * 1024 * 1024,
  dvd: 4_700_000_000,
  usb: undefined,
};

/** Transfer syntax UIDs and their names (for README.TXT, the page and messages). */
export const TRANSFER_SYNTAX_NAMES: Record<string, string> = {
  "1.2.840.10008.1.2": "Implicit VR Little Endian",
  "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
  "1.2.840.10008.1.2.5": "RLE Lossless",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
  "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless (Process 14)",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless (Process 14, SV1)",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
};

/** A transfer syntax's name, or its UID when unknown. */
export function transferSyntaxName(uid: string): string {
  return TRANSFER_SYNTAX_NAMES[uid] ?? uid;
}

const EXPLICIT_LE = "1.2.840.10008.1.2.1";
const JPEG = ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"];
const J2K = ["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"];

/** One general-purpose Application Profile (PS3.11 Annexes D and the DVD/USB annexes). */
export interface MediaProfile {
  /** The profile identifier, e.g. STD-GEN-DVD-JPEG. */
  id: string;
  medium: Medium;
  /** Transfer syntaxes the profile allows for images. */
  transferSyntaxes: readonly string[];
  /** dcmtk's dcmmkdir option for the same profile (used by the tests as the peer check). */
  dcmmkdirOption: string;
}

/** The general-purpose profiles scanbridge chooses from, most restrictive first per medium. */
export const MEDIA_PROFILES: readonly MediaProfile[] = [
  { id: "STD-GEN-CD", medium: "cd", transferSyntaxes: [EXPLICIT_LE], dcmmkdirOption: "-Pgp" },
  { id: "STD-GEN-DVD-JPEG", medium: "cd", transferSyntaxes: [EXPLICIT_LE, ...JPEG], dcmmkdirOption: "-Pdv" },
  { id: "STD-GEN-DVD-J2K", medium: "cd", transferSyntaxes: [EXPLICIT_LE, ...J2K], dcmmkdirOption: "-Pd2" },
  { id: "STD-GEN-DVD-JPEG", medium: "dvd", transferSyntaxes: [EXPLICIT_LE, ...JPEG], dcmmkdirOption: "-Pdv" },
  { id: "STD-GEN-DVD-J2K", medium: "dvd", transferSyntaxes: [EXPLICIT_LE, ...J2K], dcmmkdirOption: "-Pd2" },
  { id: "STD-GEN-USB-JPEG", medium: "usb", transferSyntaxes: [EXPLICIT_LE, ...JPEG], dcmmkdirOption: "-Pfl" },
  { id: "STD-GEN-USB-J2K", medium: "usb", transferSyntaxes: [EXPLICIT_LE, ...J2K], dcmmkdirOption: "-Pf2" },
];

/** The profile chosen for a file-set, and the files' transfer syntaxes it does not list. */
export interface ProfileChoice {
  profile: MediaProfile;
  /** Transfer syntax UID -> number of files outside the profile (kept as they are, never re-encoded). */
  outside: Record<string, number>;
}

/**
 * Choose the profile for the files' transfer syntaxes (UID -> file count): the first profile of the medium that
 * allows all of them; when none does, the one that covers the most files, with the rest listed in `outside`.
 */
export function chooseProfile(medium: Medium, syntaxes: Record<string, number>): ProfileChoice {
  const candidates = MEDIA_PROFILES.filter((p) => p.medium === medium);
  let best: ProfileChoice | undefined;
  let bestOutside = Infinity;
  for (const profile of candidates) {
    const outside: Record<string, number> = {};
    let n = 0;
    for (const [ts, count] of Object.entries(syntaxes)) {
      if (!profile.transferSyntaxes.includes(ts)) {
        outside[ts] = count;
        n += count;
      }
    }
    if (n < bestOutside) {
      best = { profile, outside };
      bestOutside = n;
    }
    if (n === 0) break;
  }
  return best!;
}
