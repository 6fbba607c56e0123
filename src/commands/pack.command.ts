import type { OptionDef, OptionsOf } from "../config/options.js";
import type { CommandSpec } from "./types.js";

/** Options of pack, send and inspect that choose what is read (inspect has only these). */
const packReadOptions = [
  { key: "patient", flags: "-p, --patient <name>", description: "patient's full name; the package folder and zip are named after it", type: "string", env: false, flagOnly: true },
  { key: "onlyPatient", flags: "--only-patient <id-or-name>", description: "a disc with several patients: keep this patient's scans (Patient ID or name), leave the others out", type: "string", env: false, flagOnly: true },
  { key: "asciiNames", flags: "--ascii-names", description: "transliterate names to ASCII for receiving systems without Unicode", type: "boolean", default: false },
  { key: "expandArchives", flags: "--expand-archives", description: "unpack nested .zip archives into the folder instead of refusing them", type: "boolean", default: false, flagOnly: true },
  { key: "strict", flags: "--strict", description: "refuse unreadable or truncated DICOM files instead of warning", type: "boolean", default: false },
] as const satisfies readonly OptionDef[];

/** Options shared by pack and send (how a package is built, including the sender's overrides). */
export const packBuildOptions = [
  ...packReadOptions,
  { key: "allowPatientMismatch", flags: "--allow-patient-mismatch", description: "package even if DICOM headers name another patient (recorded in the manifest, shown to the hospital)", type: "boolean", default: false, flagOnly: true },
  { key: "allowUnchecked", flags: "--allow-unchecked", description: "package DICOM-looking files whose patient cannot be read (recorded in the manifest, shown to the hospital)", type: "boolean", default: false, flagOnly: true },
] as const satisfies readonly OptionDef[];

/** Options of pack and send that control the zip written. */
export const packWriteOptions = [
  { key: "out", flags: "-o, --out <dir>", description: "folder to write <Name>.zip into", type: "string", default: "." },
  { key: "force", flags: "-f, --force", description: "overwrite an existing package of the same name", type: "boolean", default: false, flagOnly: true },
  { key: "store", flags: "--store", description: "store files without compression (fastest)", type: "boolean", default: false },
  { key: "level", flags: "--level <n>", description: "deflate level 1-9", type: "number", default: 6, min: 1, max: 9 },
  { key: "emailLimit", flags: "--email-limit <size>", description: "largest package that may go by e-mail", type: "size", default: "5MB" },
  { key: "maxSize", flags: "--max-size <size>", description: "refuse to write a package larger than this", type: "size" },
] as const satisfies readonly OptionDef[];

/** The option table of `pack`. */
export const packOptionTable = [...packBuildOptions, ...packWriteOptions, { key: "dryRun", flags: "-n, --dry-run", description: "check and report, write nothing", type: "boolean", default: false, flagOnly: true }] as const satisfies readonly OptionDef[];
/** The typed options `pack` receives. */
export type PackCommandOptions = OptionsOf<typeof packOptionTable>;

/** `scanbridge pack`. */
export const packSpec: CommandSpec<typeof packOptionTable> = {
  name: "pack",
  args: "<input...>",
  summary: "put scans and records into one patient-named folder, check them, and zip the whole folder with a checksum manifest",
  options: packOptionTable,
  examples: [
    'scanbridge pack /media/cdrom --patient "José Álvarez Núñez"',
    'scanbridge pack ./scans ./referral.pdf --patient "王小明" --out ~/Desktop --ascii-names',
    'scanbridge pack ./usb --patient "Ελένη Παπαδοπούλου" --json',
    'scanbridge pack /media/cdrom --patient "Ana Lima" --only-patient 4711   # a disc with two patients: keep Ana\'s scans',
  ],
  load: async () => (await import("./pack.js")).runPackCommand,
};

/** The option table of `inspect`. */
export const inspectOptionTable = packReadOptions;
/** The typed options `inspect` receives. */
export type InspectCommandOptions = OptionsOf<typeof inspectOptionTable>;

/** `scanbridge inspect`: what pack would do, without writing (same as pack --dry-run; --patient optional). */
export const inspectSpec: CommandSpec<typeof inspectOptionTable> = {
  name: "inspect",
  args: "<input...>",
  summary: "report what a CD or folder holds (patients, studies, files left out) without writing a package",
  options: inspectOptionTable,
  examples: ["scanbridge inspect /media/cdrom", 'scanbridge inspect ./usb --patient "Ana Lima" --json', "scanbridge inspect /media/cdrom --only-patient 4711"],
  load: async () => (await import("./pack.js")).runInspectCommand,
};
