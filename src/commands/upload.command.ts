import type { OptionDef, OptionsOf } from "../config/options.js";
import { parseDestination } from "../transfer/destination.js";
import { dropEarlyConnection, openEarlyConnection } from "../transfer/early.js";
import type { CommandSpec } from "./types.js";

/** Options of upload and send that say where and how a package is uploaded. Secrets have no flags. */
export const uploadOptions = [
  { key: "to", flags: "-t, --to <destination>", description: "where to upload: sftp://user@host[:port]/folder or a local folder", type: "string" },
  { key: "identity", flags: "-i, --identity <file>", description: "private key file for SFTP login (passphrase from SCANBRIDGE_KEY_PASSPHRASE or asked)", type: "string" },
  { key: "knownHosts", flags: "--known-hosts <file>", description: "known_hosts file to check the server's key against (default ~/.ssh/known_hosts)", type: "string" },
  { key: "hostFingerprint", flags: "--host-fingerprint <sha256>", description: "pinned server key fingerprint, SHA256:... (known_hosts is then not used)", type: "string" },
  { key: "verify", flags: "--verify", description: "read the uploaded file back and compare SHA-256 (also checks a resumed part by content)", type: "boolean", default: false },
  { key: "retries", flags: "--retries <n>", description: "retries after a dropped connection or timeout (each resumes where it stopped)", type: "number", default: 5, min: 0, max: 100 },
  { key: "retryDelay", flags: "--retry-delay <duration>", description: "first wait before a retry; doubles each time, with jitter, up to 30s", type: "duration", default: "1s" },
  { key: "connections", flags: "--connections <n>", description: "parallel SFTP channels for one file; default: chosen from the round trip measured at login (1 on a LAN; from 50 ms, up to 8, opened together with the first, enough windows for about 80 MB/s), fewer for a small file or when the server allows fewer (MaxSessions); while sending, more are added one at a time (up to 6) as long as the throughput keeps rising with each and the channels are held back by their windows, each new one taking the back half of the largest unsent piece; a refusal just stops adding. A number given here is fixed (no adding)", type: "number", min: 1, max: 16 },
  { key: "connectTimeout", flags: "--connect-timeout <duration>", description: "give up connecting and logging in after this long", type: "duration", default: "30s", min: 1 },
  { key: "idleTimeout", flags: "--idle-timeout <duration>", description: "treat the connection as dead when the server answers nothing for this long", type: "duration", default: "60s", min: 1 },
  { key: "keepalive", flags: "--keepalive <duration>", description: "SSH keepalive interval (keeps NAT routers from dropping idle sessions); 0 disables", type: "duration", default: "15s" },
  { key: "sftpPassword", description: "SFTP password (environment or 0600 config file only)", type: "string", secret: true, env: "SCANBRIDGE_SFTP_PASSWORD" },
  { key: "keyPassphrase", description: "passphrase of the --identity key (environment or 0600 config file only)", type: "string", secret: true, env: "SCANBRIDGE_KEY_PASSPHRASE" },
] as const satisfies readonly OptionDef[];

/** The option table of `upload`. */
export const uploadOptionTable = [...uploadOptions, { key: "force", flags: "-f, --force", description: "replace a package of the same name at the destination", type: "boolean", default: false, flagOnly: true }] as const satisfies readonly OptionDef[];
/** The typed options `upload` receives. */
export type UploadCommandOptions = OptionsOf<typeof uploadOptionTable>;

/** `scanbridge upload`. */
export const uploadSpec: CommandSpec<typeof uploadOptionTable> = {
  name: "upload",
  args: "<package>",
  summary: "upload a package (<Name>.zip) over SFTP or to a folder: resumable, verified, host key checked",
  options: uploadOptionTable,
  examples: [
    'scanbridge upload "José Álvarez Núñez.zip" --to sftp://jose@upload.example.org/incoming --verify',
    'scanbridge upload "王小明.zip" --to sftp://wang@upload.example.org:2222/in --identity ~/.ssh/id_ed25519 --host-fingerprint SHA256:...',
    'scanbridge upload "Ελένη Παπαδοπούλου.zip" --to /mnt/hospital-share/outbox --json',
    'scanbridge upload "José Álvarez Núñez.zip" --to sftp://jose@upload.example.org/incoming --connections 1   # one channel, whatever the distance',
  ],
  // The TCP connection starts while the implementation (ssh2 among it) is imported; see src/transfer/early.ts.
  warmUp: (ctx) => {
    let spec;
    try {
      spec = ctx.options.to ? parseDestination(ctx.options.to, ctx.cwd) : undefined;
    } catch {
      return undefined; // reported by the command itself
    }
    if (spec?.kind !== "sftp" || !spec.user) return undefined;
    openEarlyConnection(spec.host, spec.port);
    return dropEarlyConnection;
  },
  load: async () => (await import("./upload.js")).runUploadCommand,
};
