import { existsSync } from "node:fs";
import { setHeapFlags, V8_OLD_GENERATION_GROWTH } from "../util/heap.js";
import { resolve } from "node:path";
import { InputError, UsageError } from "../errors.js";
import { msg, t, warnText } from "../i18n/index.js";
import { formatBytes } from "../ui/format.js";
import { createConnector, type ConnectDeps, type ConnectOptions } from "../transfer/connect.js";
import { parseDestination, type Destination, type DestinationSpec } from "../transfer/destination.js";
import { normaliseFingerprint } from "../transfer/hostkeys.js";
import { defaultRetryPolicy, withRetries, type RetryPolicy } from "../transfer/retry.js";
import { readPackageSummary, uploadPackage, type UploadResult } from "../transfer/upload.js";
import type { CommandContext, CommandOutput } from "./types.js";
import type { UploadCommandOptions } from "./upload.command.js";

/** What the upload stage needs from its caller (upload or send). */
export interface UploadStageDeps extends ConnectDeps {
  verbose: boolean;
}

/** Resolved upload settings; keys as in `uploadOptions`. */
export interface UploadStageOptions extends ConnectOptions {
  to?: string;
  verify?: boolean;
  force?: boolean;
  retries?: number;
  /** Seconds. */
  retryDelay?: number;
  /** Parallel SFTP channels; undefined = chosen from the link (see src/transfer/lanes.ts). */
  connections?: number;
}

/** Validate options and read local key material before any network work, so bad values fail at once. */
function prepare(options: UploadStageOptions, deps: UploadStageDeps): { spec: DestinationSpec; policy: RetryPolicy } {
  if (!options.to) {
    throw new UsageError("DESTINATION_MISSING", msg("send.destinationMissing"), { hint: msg("send.destinationMissing.hint") });
  }
  const spec = parseDestination(options.to, deps.cwd);
  if (spec.kind === "sftp" && !spec.user) {
    throw new UsageError("DESTINATION_NO_USER", msg("upload.destinationNoUser"), { hint: msg("upload.destinationNoUser.hint") });
  }
  if (options.hostFingerprint) normaliseFingerprint(options.hostFingerprint);
  const policy: RetryPolicy = {
    ...defaultRetryPolicy,
    retries: options.retries ?? defaultRetryPolicy.retries,
    baseDelayMs: Math.round((options.retryDelay ?? defaultRetryPolicy.baseDelayMs / 1000) * 1000),
  };
  return { spec, policy };
}

/**
 * The upload stage as `send` calls it: upload an existing package to options.to, write its receipt, return the result.
 * Never prints; progress and warnings go through deps.emit.
 */
export async function uploadPackageTo(packagePath: string, options: UploadStageOptions, deps: UploadStageDeps): Promise<UploadResult> {
  const { spec, policy } = prepare(options, deps);
  // The old generation is collected at V8's own growth factor while uploading, not at pack's 30%
  // (src/process-setup.ts): an upload's heap is ~8 MB with steady per-request garbage, and 30% of it meant 13-14
  // full collections per 200 MB instead of 8-9. Memory stays bounded by the bytes in flight (src/transfer/lanes.ts).
  setHeapFlags(V8_OLD_GENERATION_GROWTH);
  const abs = resolve(deps.cwd, packagePath);
  // A missing package is reported before anyone is asked for a password.
  if (!existsSync(abs)) {
    throw new InputError("PACKAGE_NOT_FOUND", msg("upload.packageNotFound"), { privateLines: [abs], hint: msg("upload.packageNotFound.hint") });
  }
  const connectNew = await createConnector(spec, options, deps);
  // The receipt's summary is read from the zip while the login is waited on.
  const summary = readPackageSummary(abs);
  // Log in once before hashing a large package, so a wrong password or host key fails in seconds.
  deps.emit({ type: "step", id: "upload-connect", label: spec.kind === "sftp" ? t("step.connect", { host: spec.host }) : t("step.openFolder") });
  let first: Destination | undefined;
  try {
    first = (await withRetries(() => connectNew(), {
      policy,
      signal: deps.signal,
      onRetry: ({ attempt, delayMs, error }) =>
        deps.emit({ type: "warn", code: "CONNECT_RETRY", ...warnText("warn.connectRetry", { reason: (error as Error).message, attempt: attempt + 1, seconds: (delayMs / 1000).toFixed(1) }) }),
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
      summary,
    });
  } finally {
    await first?.close().catch(() => {});
  }
}

/** Human lines for an upload result (may name the package: shown only at the end, to the person who ran it). */
export function describeUpload(r: UploadResult): string[] {
  const secs = r.durationMs / 1000;
  const what = { name: r.receipt.package, size: formatBytes(r.size), destination: r.receipt.destination, seconds: secs.toFixed(1) };
  const lines = [
    secs > 0 ? t("upload.uploadedRate", { ...what, rate: formatBytes(r.bytesSent / secs) }) : t("upload.uploaded", what),
    t("upload.remotePath", { path: r.remotePath }),
    t(r.verified === "sha256" ? "upload.checkSha" : "upload.checkSize", { sha256: r.sha256 }),
  ];
  if (r.resumedFrom > 0) lines.push(t("upload.resumed", { size: formatBytes(r.resumedFrom) }));
  if (r.lanes > 1) lines.push(r.rttMs !== undefined ? t("upload.lanesRtt", { lanes: r.lanes, rtt: Math.round(r.rttMs) }) : t("upload.lanes", { lanes: r.lanes }));
  if (r.attempts > 1) lines.push(t("upload.attempts", { n: r.attempts }));
  if (r.placement === "in-place") lines.push(t("upload.inPlace"));
  if (r.receiptPath) lines.push(t("upload.receipt", { path: r.receiptPath }));
  return lines;
}

/** The upload stage's seams from a command context (upload, send and watch's remote inbox use the same). */
export function uploadDepsFrom(ctx: CommandContext<unknown>): UploadStageDeps {
  return {
    env: ctx.env,
    cwd: ctx.cwd,
    interactive: ctx.interactive,
    prompter: ctx.prompter,
    emit: (e) => ctx.reporter.emit(e),
    signal: ctx.signal,
    verbose: ctx.verbose,
  };
}

/** Run `scanbridge upload <package>`. */
export async function runUploadCommand(ctx: CommandContext<UploadCommandOptions>): Promise<CommandOutput> {
  const pkg = ctx.args[0];
  if (!pkg) throw new UsageError("PACKAGE_MISSING", msg("upload.packageMissing"));
  const r = await uploadPackageTo(pkg, ctx.options, uploadDepsFrom(ctx));
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
      lanes: r.lanes,
      lanesAdded: r.lanesAdded,
      ...(r.rttMs !== undefined ? { rttMs: r.rttMs } : {}),
      receipt: r.receiptPath,
    },
    human: describeUpload(r),
  };
}
