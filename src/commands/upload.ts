import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { InputError, NetworkError, UsageError } from "../errors.js";
import type { Emit } from "../ui/events.js";
import { formatBytes } from "../ui/format.js";
import type { Prompter } from "../ui/prompter.js";
import { formatDestination, parseDestination, type Destination, type DestinationSpec } from "../transfer/destination.js";
import { fetchHostKey, knownHostName, normaliseFingerprint, saveKnownHost, type HostKeyTrust } from "../transfer/hostkeys.js";
import { LocalDestination } from "../transfer/local.js";
import { defaultRetryPolicy, withRetries, type RetryPolicy } from "../transfer/retry.js";
import { uploadPackage, type UploadResult } from "../transfer/upload.js";
import type { CommandContext, CommandOutput } from "./types.js";

/** What the upload stage needs from its caller (upload or send). */
export interface UploadStageDeps {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** A person is at a terminal (may be asked for a password or to accept a host key). */
  interactive: boolean;
  prompter: Prompter;
  emit: Emit;
  signal: AbortSignal;
  verbose: boolean;
}

/** Resolved upload settings; keys as in `uploadOptions`. */
export interface UploadStageOptions {
  to?: string;
  identity?: string;
  knownHosts?: string;
  hostFingerprint?: string;
  verify?: boolean;
  force?: boolean;
  retries?: number;
  /** Seconds. */
  retryDelay?: number;
  connections?: number;
  /** Seconds. */
  connectTimeout?: number;
  /** Seconds. */
  idleTimeout?: number;
  /** Seconds; 0 disables. */
  keepalive?: number;
  sftpPassword?: string;
  keyPassphrase?: string;
}

function expandHome(p: string, env: NodeJS.ProcessEnv): string {
  return p === "~" || p.startsWith("~/") ? join(env.HOME ?? "", p.slice(1)) : p;
}

/** Validate options and read local key material before any network work, so bad values fail at once. */
function prepare(options: UploadStageOptions, deps: UploadStageDeps): { spec: DestinationSpec; policy: RetryPolicy } {
  if (!options.to) {
    throw new UsageError("DESTINATION_MISSING", "Where to? Pass --to sftp://user@host/folder or a local folder", { hint: "Or set it once with `scanbridge init`." });
  }
  const spec = parseDestination(options.to, deps.cwd);
  if (spec.kind === "sftp" && !spec.user) {
    throw new UsageError("DESTINATION_NO_USER", "The sftp:// address has no user name", { hint: "Use sftp://user@host/folder as the hospital gave it." });
  }
  if (options.hostFingerprint) normaliseFingerprint(options.hostFingerprint);
  const policy: RetryPolicy = {
    ...defaultRetryPolicy,
    retries: options.retries ?? defaultRetryPolicy.retries,
    baseDelayMs: Math.round((options.retryDelay ?? defaultRetryPolicy.baseDelayMs / 1000) * 1000),
  };
  return { spec, policy };
}

async function loadIdentity(options: UploadStageOptions, deps: UploadStageDeps): Promise<{ key: Buffer; passphrase?: string } | undefined> {
  if (!options.identity) return undefined;
  const path = resolve(deps.cwd, expandHome(options.identity, deps.env));
  let key: Buffer;
  try {
    key = readFileSync(path);
  } catch (err) {
    throw new UsageError("IDENTITY_UNREADABLE", `Cannot read the key file given with --identity (${(err as NodeJS.ErrnoException).code ?? "error"})`, { hint: "Check the path and its permissions." });
  }
  // ssh2 is CommonJS; `utils` is only reachable through the default export under Node's ESM loader.
  const { utils } = (await import("ssh2")).default;
  let passphrase = options.keyPassphrase;
  let parsed = utils.parseKey(key, passphrase);
  if (parsed instanceof Error && /passphrase/i.test(parsed.message) && passphrase === undefined) {
    if (!deps.interactive) {
      throw new UsageError("KEY_PASSPHRASE_NEEDED", "The --identity key is protected by a passphrase", {
        hint: "Set SCANBRIDGE_KEY_PASSPHRASE, use ssh-agent, or run at a terminal to be asked.",
      });
    }
    passphrase = await deps.prompter.password("Passphrase for the SSH key:");
    parsed = utils.parseKey(key, passphrase);
  }
  if (parsed instanceof Error) {
    throw new NetworkError("AUTH_KEY_UNREADABLE", /passphrase|decrypt/i.test(parsed.message) ? "Wrong passphrase for the --identity key" : `The --identity file is not a usable private key (${parsed.message})`, {
      hint: "Check the key file and its passphrase (SCANBRIDGE_KEY_PASSPHRASE).",
    });
  }
  return { key, passphrase };
}

/** Build the per-attempt connection factory: host-key questions and password prompts happen here, never in the stage. */
export async function createConnector(spec: DestinationSpec, options: UploadStageOptions, deps: UploadStageDeps): Promise<() => Promise<Destination>> {
  if (spec.kind === "local") return async () => new LocalDestination(spec.folder);
  const { connectSftp } = await import("../transfer/sftp.js");
  const identity = await loadIdentity(options, deps);
  const agent = deps.env.SSH_AUTH_SOCK || undefined;
  let password = options.sftpPassword;
  if (password === undefined && !identity && !agent) {
    if (!deps.interactive) {
      throw new NetworkError("AUTH_NO_CREDENTIALS", "No way to log in: no --identity key, no ssh-agent and no password", {
        hint: "Set SCANBRIDGE_SFTP_PASSWORD, use --identity FILE or ssh-agent, or run at a terminal to be asked.",
      });
    }
    password = await deps.prompter.password(`Password for ${spec.user}@${spec.host}:`);
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
          `The server ${knownHostName(spec.host, spec.port)} is not known yet. Its ${seen.keyType} key fingerprint is\n  ${seen.fingerprint}\nDoes it match the fingerprint the hospital gave you?`,
          false,
        );
        if (!yes) throw err;
        saveKnownHost(knownHostsFile, spec.host, spec.port, seen.key);
        deps.emit({ type: "info", message: `Saved the server's key to ${knownHostsFile}` });
        return connectOnce();
      }
      if (err.code === "AUTH_FAILED" && password === undefined) {
        // Key or agent refused: a person may still know the account's password.
        password = await deps.prompter.password(`Password for ${spec.user}@${spec.host}:`);
        return connectOnce();
      }
      throw err;
    }
  };
}

/**
 * The upload stage as `send` calls it: upload an existing package to options.to, write its receipt, return the result.
 * Never prints; progress and warnings go through deps.emit.
 */
export async function uploadPackageTo(packagePath: string, options: UploadStageOptions, deps: UploadStageDeps): Promise<UploadResult> {
  const { spec, policy } = prepare(options, deps);
  const abs = resolve(deps.cwd, packagePath);
  // A missing package is reported before anyone is asked for a password.
  if (!existsSync(abs)) {
    throw new InputError("PACKAGE_NOT_FOUND", "The package file does not exist", { privateLines: [abs], hint: "Check the path, or run `scanbridge pack` first." });
  }
  const connectNew = await createConnector(spec, options, deps);
  // Log in once before hashing a large package, so a wrong password or host key fails in seconds.
  deps.emit({ type: "step", id: "upload-connect", label: spec.kind === "sftp" ? `Connecting to ${spec.host}` : "Opening the destination folder" });
  let first: Destination | undefined;
  try {
    first = (await withRetries(() => connectNew(), {
      policy,
      signal: deps.signal,
      onRetry: ({ attempt, delayMs, error }) =>
        deps.emit({ type: "warn", code: "CONNECT_RETRY", message: `Connecting failed (${(error as Error).message}); attempt ${attempt + 1} in ${(delayMs / 1000).toFixed(1)} s` }),
    })).value;
  } catch (err) {
    deps.emit({ type: "step-done", id: "upload-connect", ok: false });
    throw err;
  }
  deps.emit({ type: "step-done", id: "upload-connect" });
  try {
    return await uploadPackage({
      packagePath: abs,
      connect: async () => {
        if (first) {
          const d = first;
          first = undefined;
          return d;
        }
        return connectNew();
      },
      verify: options.verify,
      force: options.force,
      retry: policy,
      connections: options.connections,
      emit: deps.emit,
      signal: deps.signal,
      verbose: deps.verbose,
    });
  } finally {
    await first?.close().catch(() => {});
  }
}

/** Human lines for an upload result (may name the package: shown only at the end, to the person who ran it). */
export function describeUpload(r: UploadResult): string[] {
  const secs = r.durationMs / 1000;
  const rate = secs > 0 ? ` (${formatBytes(r.bytesSent / secs)}/s)` : "";
  const lines = [
    `Uploaded ${r.receipt.package} (${formatBytes(r.size)}) to ${r.receipt.destination} in ${secs.toFixed(1)} s${rate}`,
    `  remote path: ${r.remotePath}`,
    `  check: ${r.verified === "sha256" ? "read back, SHA-256 matches" : "size matches"} · sha256 ${r.sha256}`,
  ];
  if (r.resumedFrom > 0) lines.push(`  resumed from ${formatBytes(r.resumedFrom)} already at the destination`);
  if (r.attempts > 1) lines.push(`  took ${r.attempts} attempts`);
  if (r.placement === "in-place") lines.push("  the server forbids renames: the file was written in place under its final name");
  if (r.receiptPath) lines.push(`  receipt: ${r.receiptPath}`);
  return lines;
}

/** The upload stage's seams from a command context (upload, send and watch's remote inbox use the same). */
export function uploadDepsFrom(ctx: CommandContext): UploadStageDeps {
  return {
    env: ctx.env,
    cwd: ctx.cwd,
    interactive: ctx.interactive,
    prompter: ctx.prompter,
    emit: (e) => ctx.reporter.emit(e),
    signal: ctx.signal,
    verbose: Boolean(ctx.options.verbose),
  };
}

/** Run `scanbridge upload <package>`. */
export async function runUploadCommand(ctx: CommandContext): Promise<CommandOutput> {
  const pkg = ctx.args[0];
  if (!pkg) throw new UsageError("PACKAGE_MISSING", "Which package? Pass the <Name>.zip to upload");
  const r = await uploadPackageTo(pkg, ctx.options as UploadStageOptions, uploadDepsFrom(ctx));
  return {
    data: {
      package: r.receipt.package,
      destination: r.receipt.destination,
      remotePath: r.remotePath,
      size: r.size,
      sha256: r.sha256,
      verified: r.verified,
      attempts: r.attempts,
      resumedFrom: r.resumedFrom,
      bytesSent: r.bytesSent,
      placement: r.placement,
      durationMs: r.durationMs,
      receipt: r.receiptPath,
    },
    human: describeUpload(r),
  };
}
