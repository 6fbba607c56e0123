import type { OptionDef, OptionsOf } from "../config/options.js";
import { notifyOptions } from "./notify.command.js";
import { packBuildOptions, packWriteOptions } from "./pack.command.js";
import type { CommandSpec } from "./types.js";
import { uploadOptions } from "./upload.command.js";

/** The option table of `send`. */
export const sendOptionTable = [...packBuildOptions, ...packWriteOptions, ...uploadOptions, ...notifyOptions] as const satisfies readonly OptionDef[];
/** The typed options `send` receives. */
export type SendCommandOptions = OptionsOf<typeof sendOptionTable>;

/** `scanbridge send`: pack → upload → notify in one go; a re-run after an interruption does nothing twice. */
export const sendSpec: CommandSpec<typeof sendOptionTable> = {
  name: "send",
  args: "<input...>",
  summary: "the whole procedure in one go: pack the scans into the patient's folder and zip, upload it, notify the coordinators",
  options: sendOptionTable,
  examples: [
    'scanbridge send /media/cdrom ./referral.pdf --patient "José Álvarez Núñez" --to sftp://jose@upload.example.org/incoming',
    'scanbridge send ./usb --patient "王小明" --to ./outbox            # a local folder: no server needed',
    'scanbridge send /media/cdrom --patient "Ελένη Παπαδοπούλου" --json   # after `scanbridge init` set --to, --email, --smtp',
  ],
  load: async () => (await import("./send.js")).runSendCommand,
};
