import type { CommandSpec } from "./types.js";
import { pickOptions, type OptionDef, type OptionsOf } from "../config/options.js";
import { notifyOptions } from "./notify.command.js";
import { packageCheckOptions } from "./verify.command.js";
import { uploadOptions } from "./upload.command.js";
import { routingOptions } from "./route.command.js";
import { forwardOptions } from "./forward.command.js";
import { watchMediaOptions } from "./media.command.js";

/** The watcher's state folder, shared by watch, reconcile and audit verify. */
export const stateOption = {
  key: "state",
  flags: "--state <dir>",
  description: "the watcher's own folder (claims, forward queue, notifications, reconciliations, locks, keyed audit log): outside the drop, on its file system, 0700; default scanbridge-state beside --ready",
  type: "string",
  env: "SCANBRIDGE_STATE",
} as const satisfies OptionDef;

/** Connection options shared with upload (same keys, defaults and host-key rules), for a remote inbox. */
const remoteConnectionOptions = pickOptions(uploadOptions, ["identity", "knownHosts", "hostFingerprint", "connectTimeout", "idleTimeout", "keepalive", "sftpPassword", "keyPassphrase"]);

/** The option table of `watch`. */
export const watchOptionTable = [
    { key: "ready", flags: "--ready <dir>", description: "folder where verified packages are extracted, one folder per patient", type: "string", env: "SCANBRIDGE_WATCH_READY" },
    stateOption,
    { key: "group", flags: "--group <name>", description: "staff group that may read what watch writes (ready/, archive, quarantine): files 0640, folders 0750; without it 0600/0700", type: "string", env: "SCANBRIDGE_WATCH_GROUP" },
    { key: "archive", flags: "--archive <dir>", description: "where processed zips go (default <state>/archive)", type: "string", env: "SCANBRIDGE_WATCH_ARCHIVE" },
    { key: "quarantine", flags: "--quarantine <dir>", description: "where rejected zips go with <Name>.reason.json (default <state>/quarantine)", type: "string", env: "SCANBRIDGE_WATCH_QUARANTINE" },
    { key: "settle", flags: "--settle <seconds>", description: "a package without .sha256 marker is taken when unchanged this long and its zip end record reads", type: "duration", env: "SCANBRIDGE_WATCH_SETTLE", default: "30s", min: 0 },
    { key: "concurrency", flags: "--concurrency <n>", description: "packages processed at the same time", type: "number", env: "SCANBRIDGE_WATCH_CONCURRENCY", default: 2, min: 1, max: 64 },
    { key: "once", flags: "--once", description: "process what is in the drop folder now, then exit (cron, tests)", type: "boolean", default: false, flagOnly: true },
    { key: "audit", flags: "--audit <file>", description: "audit log, JSON Lines with a hash chain keyed by <state>/audit.key (default <state>/audit.jsonl)", type: "string", env: "SCANBRIDGE_WATCH_AUDIT" },
    { key: "auditNames", flags: "--audit-names", description: "write package (patient) names into the audit log", type: "boolean", env: "SCANBRIDGE_WATCH_AUDIT_NAMES", default: false },
    { key: "rescan", flags: "--rescan <seconds>", description: "rescan the drop folder this often even without file-system events", type: "duration", env: "SCANBRIDGE_WATCH_RESCAN", default: "30s", min: 1 },
    { key: "giveUp", flags: "--give-up <seconds>", description: "quarantine an unmarked file that is stable but still not a readable zip after this long", type: "duration", env: "SCANBRIDGE_WATCH_GIVE_UP", default: "1h", min: 1 },
    { key: "staleClaim", flags: "--stale-claim <seconds>", description: "take over packages claimed by a watcher (on another host) silent this long", type: "duration", env: "SCANBRIDGE_WATCH_STALE_CLAIM", default: "2m", min: 30 },
    { key: "drop", flags: "--drop <dir>", description: "remote inbox only: local folder downloads are handed to and processed in (default <state>/remote-drop)", type: "string", env: "SCANBRIDGE_WATCH_DROP" },
    { key: "remoteAfter", flags: "--remote-after <action>", description: "remote inbox only: what happens to a remote package once it is downloaded and hash-checked: move (to --remote-processed) or delete", type: "string", env: "SCANBRIDGE_WATCH_REMOTE_AFTER", default: "move", choices: ["move", "delete"] },
    { key: "remoteClaims", flags: "--remote-claims <path>", description: "remote inbox only: remote folder a package is renamed into before it is downloaded (the claim; several watchers never take one package twice); must be one the uploaders cannot write (default <remote-processed>/.claiming)", type: "string", env: "SCANBRIDGE_WATCH_REMOTE_CLAIMS" },
    { key: "remoteProcessed", flags: "--remote-processed <path>", description: "remote inbox only: remote folder taken packages are moved to (default processed/ beside the inbox)", type: "string", env: "SCANBRIDGE_WATCH_REMOTE_PROCESSED" },
    ...remoteConnectionOptions,
    ...packageCheckOptions,
    ...notifyOptions,
    ...routingOptions,
    ...forwardOptions,
    ...watchMediaOptions,
  ] as const satisfies readonly OptionDef[];
/** The typed options `watch` receives. */
export type WatchCommandOptions = OptionsOf<typeof watchOptionTable>;

/** `scanbridge watch`. */
export const watchSpec: CommandSpec<typeof watchOptionTable> = {
  name: "watch",
  args: "<dropdir>",
  summary:
    "take complete packages from a drop folder (or a remote inbox, sftp://user@host[:port]/folder), verify and extract them into the ready folder, archive or quarantine them, keep an audit log",
  options: watchOptionTable,
  examples: [
    "scanbridge watch /srv/drop --ready /srv/ready",
    "scanbridge watch /srv/sftp/drop --ready /srv/intake/ready --state /srv/sftp-state --group radiology",
    "scanbridge watch /srv/drop --ready /srv/ready --once --json",
    "scanbridge watch /srv/drop --ready /srv/ready --quarantine /srv/quarantine --settle 2m --concurrency 4",
    "scanbridge watch sftp://intake@upload.hospital.example/inbox --ready /srv/ready --identity ~/.ssh/id_ed25519 --remote-after move",
    "scanbridge watch /srv/drop --ready /srv/ready --email radiology-intake@hospital.example --smtp smtp://relay.hospital.example",
    "scanbridge watch /srv/drop --ready /srv/ready --media /srv/media --media-iso",
  ],
  load: async () => (await import("./watch.js")).runWatchWithNotifications,
};
