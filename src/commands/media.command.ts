import type { OptionDef, OptionsOf } from "../config/options.js";
import type { CommandSpec } from "./types.js";
import { packageCheckOptions } from "./verify.command.js";

/** What a file-set is made for (shared by media and watch --media). */
export const mediaBuildOptions = [
  { key: "iso", flags: "--iso <file>", description: "also write an ISO 9660 image of the file-set, ready to burn (needs xorriso)", type: "string", flagOnly: true },
  { key: "medium", flags: "--medium <kind>", description: "medium the file-set is for: cd (700 MB), dvd (4.7 GB) or usb (no limit); chooses the DICOM profile", type: "string", default: "dvd", choices: ["cd", "dvd", "usb"], env: "SCANBRIDGE_MEDIA_MEDIUM" },
  { key: "maxSize", flags: "--max-size <size>", description: "refuse a delivery larger than this on the medium (default: the medium's capacity)", type: "size", env: "SCANBRIDGE_MEDIA_MAX_SIZE" },
] as const satisfies readonly OptionDef[];

/** Options of `watch` that make the page and media of each filed delivery. */
export const watchMediaOptions = [
  { key: "media", flags: "--media <dir>", description: "make an IHE PDI file-set of each filed delivery in <dir>/<package id>/ (recorded in the audit log)", type: "string", env: "SCANBRIDGE_WATCH_MEDIA" },
  { key: "mediaIso", flags: "--media-iso", description: "with --media: also write <dir>/<package id>.iso, ready to burn (needs xorriso)", type: "boolean", default: false, env: "SCANBRIDGE_WATCH_MEDIA_ISO" },
  { key: "mediaMedium", flags: "--media-medium <kind>", description: "with --media: cd, dvd or usb (capacity and DICOM profile)", type: "string", default: "dvd", choices: ["cd", "dvd", "usb"], env: "SCANBRIDGE_WATCH_MEDIA_MEDIUM" },
] as const satisfies readonly OptionDef[];

/** The option table of `media`. */
export const mediaOptionTable = [
    { key: "out", flags: "-o, --out <dir>", description: "write the file-set into this new (or empty) folder", type: "string", flagOnly: true },
    { key: "usb", flags: "--usb <dir>", description: "write the file-set to the root of this mounted USB stick (FAT32-safe names)", type: "string", flagOnly: true },
    ...mediaBuildOptions,
    { key: "filesetId", flags: "--fileset-id <id>", description: "File-set ID and ISO volume name (A-Z 0-9 _, up to 16; default SB<date>_<package id>)", type: "string", flagOnly: true },
    ...packageCheckOptions,
  ] as const satisfies readonly OptionDef[];
/** The typed options `media` receives. */
export type MediaCommandOptions = OptionsOf<typeof mediaOptionTable>;

/** `scanbridge media`. */
export const mediaSpec: CommandSpec<typeof mediaOptionTable> = {
  name: "media",
  args: "<delivery>",
  summary: "put a delivery (a folder in ready/ or a package .zip) on media for the specialist: IHE PDI file-set with DICOMDIR, README.TXT and a browser page (INDEX.HTM), optionally an ISO image",
  options: mediaOptionTable,
  examples: [
    'scanbridge media "/srv/ready/José Álvarez Núñez" --out /srv/media/alvarez --iso /srv/media/alvarez.iso',
    "scanbridge media /srv/drop/archive/Package.zip --iso /tmp/disc.iso --medium cd",
    'scanbridge media "/srv/ready/José Álvarez Núñez" --usb /media/usb0 --json',
  ],
  load: async () => (await import("./media.js")).runMediaCommand,
};
