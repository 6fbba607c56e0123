import type { OptionDef, OptionsOf } from "../config/options.js";
import { notifyOptions } from "../notify/options.js";
import type { CommandSpec } from "./types.js";

/** Options of every command that notifies coordinators (notify, send, watch, init); declared beside the notify stage. */
export { notifyOptions };

/** The option table of `notify`. */
export const notifyOptionTable = [
    { key: "receipt", flags: "-r, --receipt <file>", description: "the <Name>.receipt.json written by upload/send", type: "string", env: false, flagOnly: true },
    { key: "retry", flags: "--retry", description: "only send what is pending in the outbox (of --receipt, or every *.outbox.json in the current folder)", type: "boolean", default: false, flagOnly: true },
    ...notifyOptions,
  ] as const satisfies readonly OptionDef[];
/** The typed options `notify` receives. */
export type NotifyCommandOptions = OptionsOf<typeof notifyOptionTable>;

/** `scanbridge notify`. */
export const notifySpec: CommandSpec<typeof notifyOptionTable> = {
  name: "notify",
  summary: "tell the coordinators a package was uploaded (e-mail and/or webhook), from its receipt; unsent messages wait in an outbox",
  options: notifyOptionTable,
  examples: [
    'scanbridge notify --receipt "José Álvarez Núñez.receipt.json" --email intl@hospital.example,coord@hospital.example --smtp smtp://clinic@mail.example.org',
    'scanbridge notify --receipt "José Álvarez Núñez.receipt.json" --webhook https://hooks.hospital.example/scanbridge',
    "scanbridge notify --retry",
  ],
  load: async () => (await import("./notify.js")).runNotifyCommand,
};
