import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { NetworkError, UsageError } from "../errors.js";
import { msg, t } from "../i18n/index.js";
import type { Emit } from "../ui/events.js";
import type { Prompter } from "../ui/prompter.js";
import { formatDestination, type Destination, type DestinationSpec } from "./destination.js";
import { fetchHostKey, knownHostName, saveKnownHost, type HostKeyTrust } from "./hostkeys.js";
import { takeEarlyConnection } from "./early.js";
import { LocalDestination } from "./local.js";

/**
 * Connection set-up for every command that reaches a destination (upload, send, watch's remote inbox): the
 * --identity key and its passphrase, the password, known_hosts / pinned fingerprint, and the interactive
 * "is this the hospital's key?" question. Commands stay thin; the stage gets a per-attempt connect function.
 */

/** What connecting needs from the caller's environment. */
export interface ConnectDeps {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** A person is at a terminal (may be asked for a password or to accept a host key). */
  interactive: boolean;
  prompter: Prompter;
  emit: Emit;
  signal: AbortSignal;
}

/** Connection settings; keys as in the upload option table. */
export interface ConnectOptions {
  identity?: string;
  knownHosts?: string;
  hostFingerprint?: string;
  /** Seconds. */
  connectTimeout?: number;
  /** Seconds. */
  idleTimeout?: number;
  /** Seconds; 0 disables. */
  keepalive?: number;
  sftpPassword?: string;
  keyPassphrase?: string;
}

export function expandHome(p: string, env: NodeJS.ProcessEnv): string {
  return p === "~" || p.startsWith("~/") ? join(env.HOME ?? "", p.slice(1)) : p;
}

async function loadIdentity(options: ConnectOptions, deps: ConnectDeps): Promise<{ key: Buffer; passphrase?: string } | undefined> {
  if (!options.identity) return undefined;
  const path = resolve(deps.cwd, expandHome(options.identity, deps.env));
  let key: Buffer;
  try {
    key = readFileSync(path);
  } catch (err) {
    throw new UsageError("IDENTITY_UNREADABLE", msg("upload.identityUnreadable", { reason: (err as NodeJS.ErrnoException).code ?? "error" }), { hint: msg("upload.identityUnreadable.hint") });
  }
  // ssh2 is CommonJS; `utils` is only reachable through the default export under Node's ESM loader.
  const { utils } = (await import("ssh2")).default;
  let passphrase = options.keyPassphrase;
  let parsed = utils.parseKey(key, passphrase);
  if (parsed instanceof Error && /passphrase/i.test(parsed.message) && passphrase === undefined) {
    if (!deps.interactive) {
      throw new UsageError("KEY_PASSPHRASE_NEEDED", msg("upload.passphraseNeeded"), {
        hint: msg("upload.passphraseNeeded.hint"),
      });
    }
    passphrase = await deps.prompter.password(t("upload.askPassphrase"));
    parsed = utils.parseKey(key, passphrase);
  }
  if (parsed instanceof Error) {
    throw new NetworkError("AUTH_KEY_UNREADABLE", /passphrase|decrypt/i.test(parsed.message) ? msg("upload.wrongPassphrase") : msg("upload.keyUnusable", { reason: parsed.message }), {
      hint: msg("upload.keyUnusable.hint"),
    });
  }
  return { key, passphrase };
}

/** Build the per-attempt connection factory: host-key questions and password prompts happen here, never in the stage. */
export async function createConnector(spec: DestinationSpec, options: ConnectOptions, deps: ConnectDeps): Promise<() => Promise<Destination>> {
  if (spec.kind === "local") return async () => new LocalDestination(spec.folder);
  const { connectSftp } = await import("./sftp.js");
  const identity = await loadIdentity(options, deps);
  const agent = deps.env.SSH_AUTH_SOCK || undefined;
  let password = options.sftpPassword;
  if (password === undefined && !identity && !agent) {
    if (!deps.interactive) {
      throw new NetworkError("AUTH_NO_CREDENTIALS", msg("upload.noCredentials"), {
        hint: msg("upload.noCredentials.hint"),
      });
    }
    password = await deps.prompter.password(t("upload.askPassword", { account: `${spec.user}@${spec.host}` }));
  }
  const knownHostsFile = options.knownHosts ? resolve(deps.cwd, expandHome(options.knownHosts, deps.env)) : join(deps.env.HOME ?? "", ".ssh", "known_hosts");
  const trust: HostKeyTrust = {
    host: spec.host,
    port: spec.port,
    pinnedFingerprint: options.hostFingerprint,
    knownHostsFiles: options.knownHosts ? [knownHostsFile] : [knownHostsFile, "/etc/ssh/ssh_known_hosts"],
  };
  const connectOnce = () =>
    connectSftp({
      // The connection `upload` opened while its modules loaded, the first time (src/transfer/early.ts).
      sock: takeEarlyConnection(spec.host, spec.port),
      host: spec.host,
      port: spec.port,
      folder: spec.folder,
      url: formatDestination(spec),
      auth: { username: spec.user!, privateKey: identity?.key, passphrase: identity?.passphrase, agent, password },
      trust,
      connectTimeoutMs: (options.connectTimeout ?? 30) * 1000,
      idleTimeoutMs: (options.idleTimeout ?? 60) * 1000,
      keepaliveIntervalMs: (options.keepalive ?? 15) * 1000,
      signal: deps.signal,
    });
  return async () => {
    try {
      return await connectOnce();
    } catch (err) {
      if (!(err instanceof NetworkError) || !deps.interactive) throw err;
      if (err.code === "HOST_KEY_UNKNOWN") {
        const seen = await fetchHostKey(spec.host, spec.port, (options.connectTimeout ?? 30) * 1000);
        // The key shown must be the key that was refused a moment ago.
        if (seen.fingerprint !== err.details.fingerprint) throw err;
        const yes = await deps.prompter.confirm(
          t("upload.askHostKey", { host: knownHostName(spec.host, spec.port), keyType: seen.keyType, fingerprint: seen.fingerprint }),
          false,
        );
        if (!yes) throw err;
        saveKnownHost(knownHostsFile, spec.host, spec.port, seen.key);
        deps.emit({ type: "info", message: t("upload.hostKeySaved", { file: knownHostsFile }) });
        return connectOnce();
      }
      if (err.code === "AUTH_FAILED" && password === undefined) {
        // Key or agent refused: a person may still know the account's password.
        password = await deps.prompter.password(t("upload.askPassword", { account: `${spec.user}@${spec.host}` }));
        return connectOnce();
      }
      throw err;
    }
  };
}

