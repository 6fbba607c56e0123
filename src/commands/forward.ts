import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "../errors.js";
import { parseDicomwebUrl, type DicomwebTarget } from "../forward/dicomweb.js";
import type { ForwardOptions } from "../forward/queue.js";
import { parseReconcileMap, type ReconcileOptions } from "../forward/reconcile.js";
import type { OptionsOf } from "../config/options.js";
import type { forwardOptions } from "./forward.command.js";

/** The resolved forwarding options of watch. */
type ForwardSettings = OptionsOf<typeof forwardOptions>;

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** Forwarding settings from resolved watch options; undefined without --forward. Bad combinations fail here, at start. */
export function forwardFrom(options: ForwardSettings, cwd: string): ForwardOptions | undefined {
  const raw = options.forward;
  if (!raw) return undefined;
  const url = parseDicomwebUrl(raw);
  const user = options.forwardUser || undefined;
  const password = options.forwardPassword || undefined;
  const token = options.forwardToken || undefined;
  if (token && (user || password)) throw new UsageError("FORWARD_AUTH_AMBIGUOUS", "Give either a bearer token or a user and password for the PACS, not both");
  if (password && !user) throw new UsageError("FORWARD_AUTH_INCOMPLETE", "SCANBRIDGE_FORWARD_PASSWORD is set but no --forward-user");
  if (user && !password) throw new UsageError("FORWARD_AUTH_INCOMPLETE", "--forward-user is set but SCANBRIDGE_FORWARD_PASSWORD is not");
  // Credentials in clear text over a network are refused; on loopback (a local proxy or test PACS) they stay on the host.
  if ((user || token) && url.protocol === "http:" && !LOOPBACK.has(url.hostname)) {
    throw new UsageError("FORWARD_INSECURE_AUTH", "Refusing to send PACS credentials over plain http:// to another host", { hint: "Use the PACS's https:// DICOMweb address." });
  }
  let ca: Buffer | undefined;
  if (options.forwardCa) {
    try {
      ca = readFileSync(resolve(cwd, options.forwardCa));
    } catch (err) {
      throw new UsageError("FORWARD_CA_UNREADABLE", `Cannot read --forward-ca: ${(err as Error).message}`);
    }
  }
  const target: DicomwebTarget = {
    url: url.href,
    ...(token ? { auth: { kind: "bearer" as const, token } } : user && password ? { auth: { kind: "basic" as const, user, password } } : {}),
    ...(ca ? { ca } : {}),
  };
  const reconcile = reconcileFrom(options, cwd);
  return { target, reconcile, batchSize: options.forwardBatch, retryDelayMs: options.forwardRetry * 1000, maxRetryDelayMs: 3_600_000 };
}

/**
 * Reconciliation settings. Outside patient IDs must not enter the local PACS as they are, so a package without a
 * local identity is held (NOT_RECONCILED) unless --forward-unreconciled (config forwardUnreconciled) says to
 * forward such packages as received.
 */
export function reconcileFrom(options: ForwardSettings, cwd: string): ReconcileOptions {
  const forwardUnreconciled = options.forwardUnreconciled;
  const required = !forwardUnreconciled;
  const mapFile = options.reconcileMap ? resolve(cwd, options.reconcileMap) : undefined;
  if (options.requireReconcile === false && !forwardUnreconciled) {
    throw new UsageError("RECONCILE_UNCLEAR", "requireReconcile is false, but packages without a local identity are held anyway", { hint: "To forward them as received, set forwardUnreconciled (--forward-unreconciled) instead; otherwise remove requireReconcile." });
  }
  if (options.requireReconcile && forwardUnreconciled) {
    throw new UsageError("RECONCILE_CONFLICT", "--require-reconcile and --forward-unreconciled contradict each other", { hint: "Use one: require a local identity, or forward packages without one as received." });
  }
  if (mapFile) {
    // Checked at start so a typo fails now; read again at every attempt so staff can add entries while watch runs.
    let text: string;
    try {
      text = readFileSync(mapFile, "utf8");
    } catch (err) {
      throw new UsageError("RECONCILE_MAP_UNREADABLE", `Cannot read --reconcile-map: ${(err as Error).message}`);
    }
    parseReconcileMap(text, "--reconcile-map");
  }
  return { required, forwardUnreconciled, ...(mapFile ? { mapFile } : {}) };
}
