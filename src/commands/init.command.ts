import { pickOptions, type OptionDef, type OptionsOf } from "../config/options.js";
import { notifyOptions } from "./notify.command.js";
import { uploadOptions } from "./upload.command.js";
import type { CommandSpec } from "./types.js";

/** Upload settings `init` asks for and writes: the upload command's own definitions, so keys and flags agree. */
export const initDestinationOptions = [
  ...pickOptions(uploadOptions, ["to", "identity", "hostFingerprint", "sftpPassword"]),
  { key: "sftpAuth", flags: "--sftp-auth <method>", description: "how you log in to the SFTP server: key (with --identity), agent or password; decides what init asks", type: "string", choices: ["key", "agent", "password"], flagOnly: true },
] as const satisfies readonly OptionDef[];

/** The option table of `init`. */
export const initOptionTable = [
    ...notifyOptions,
    ...initDestinationOptions,
    { key: "nonInteractive", flags: "--non-interactive", description: "ask nothing: take every answer from flags, environment and the existing config", type: "boolean", default: false, flagOnly: true },
    { key: "force", flags: "-f, --force", description: "replace an existing config file without asking", type: "boolean", default: false, flagOnly: true },
    { key: "acceptHostKey", flags: "--accept-host-key", description: "with --non-interactive and no --host-fingerprint: pin the key the server presents now (trust on first use)", type: "boolean", default: false, flagOnly: true },
    { key: "storeSecrets", flags: "--store-secrets", description: "also write passwords and the webhook secret into the config file (not recommended)", type: "boolean", default: false, flagOnly: true },
    { key: "skipChecks", flags: "--skip-checks", description: "do not connect to the SFTP and SMTP servers (offline set-up)", type: "boolean", default: false, flagOnly: true },
  ] as const satisfies readonly OptionDef[];
/** The typed options `init` receives. */
export type InitCommandOptions = OptionsOf<typeof initOptionTable>;

/** `scanbridge init`. */
export const initSpec: CommandSpec<typeof initOptionTable> = {
  name: "init",
  summary: "set scanbridge up once: who you are, who to notify, where to upload; checks the server and writes the config file (0600)",
  options: initOptionTable,
  examples: [
    "scanbridge init",
    "SCANBRIDGE_SMTP_PASSWORD=... scanbridge init --non-interactive --sender-role clinic --sender-name \"Clínica Sol\" --sender-email admin@clinica.example --email intl@hospital.example --smtp smtp://admin@mail.clinica.example --to sftp://clinica@upload.hospital.example/incoming --sftp-auth key --identity ~/.ssh/id_ed25519 --host-fingerprint SHA256:...",
  ],
  load: async () => (await import("./init.js")).runInitCommand,
};
