import { english, msg, type LocalText } from "./i18n/index.js";

/** Exit codes, documented in README.md. The only place they are defined. */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  inputRejected: 3,
  sizeLimit: 4,
  network: 5,
  remoteVerification: 6,
  notifyFailed: 7,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * What a caller does after an error, as rclone classifies its errors (retry / fatal / no-retry):
 * - "retry": it may go away by itself (connection reset, timeout, busy server, HTTP 429/5xx): try again, backing off;
 * - "no-retry": this item failed for good (a rejected package, a refused request, a wrong hash): trying it again
 *   gives the same answer, but other items go on;
 * - "fatal": nothing else will get through either (refused login, unknown host key, bad usage, disk full,
 *   interrupted): stop the run, or the round of a long-running watcher, instead of trying every other item.
 */
export type RetryClass = "retry" | "no-retry" | "fatal";

/** Options every typed error accepts. */
export interface ErrorOptions {
  /** A one-line hint: a LocalText is shown in the reader's language and kept in English in `hint`. */
  hint?: string | LocalText;
  /** Structured details for --json output and tests. Never put PHI here unless verbose-only. */
  details?: Record<string, unknown>;
  /** Lines that may contain PHI: shown to the user at the terminal, never logged or put in JSON unless --verbose. */
  privateLines?: string[];
  cause?: unknown;
  /** The retry class; defaults to "retry" when `retryable`, else to the error type's class. */
  retryClass?: RetryClass;
  /** Shorthand: true means retryClass "retry". */
  retryable?: boolean;
}

/** Base of every error scanbridge throws on purpose: a stable code, a one-line hint and an exit code. */
export class ScanbridgeError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;
  readonly privateLines: string[];
  readonly retryClass: RetryClass;
  /** retryClass === "retry". */
  readonly retryable: boolean;
  /** The message and hint to show a person, in their language (message and hint stay English for JSON and logs). */
  readonly text: LocalText | string;
  readonly hintText: LocalText | string | undefined;

  constructor(code: string, exitCode: ExitCodeValue, message: string | LocalText, opts: ErrorOptions = {}, typeClass: RetryClass = "no-retry") {
    super(typeof message === "string" ? message : english(message.id, message.values), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.text = message;
    this.hintText = opts.hint;
    this.hint = opts.hint === undefined || typeof opts.hint === "string" ? opts.hint : english(opts.hint.id, opts.hint.values);
    this.details = opts.details ?? {};
    this.privateLines = opts.privateLines ?? [];
    this.retryClass = opts.retryClass ?? (opts.retryable ? "retry" : typeClass);
    this.retryable = this.retryClass === "retry";
  }
}

/** Bad flags or arguments (exit 2). Fatal: every other item would meet the same setting. */
export class UsageError extends ScanbridgeError {
  constructor(code: string, message: string | LocalText, opts: ErrorOptions = {}) {
    super(code, ExitCode.usage, message, opts, "fatal");
  }
}

/** The inputs or a package were checked and rejected (exit 3). */
export class InputError extends ScanbridgeError {
  constructor(code: string, message: string | LocalText, opts: ErrorOptions = {}) {
    super(code, ExitCode.inputRejected, message, opts);
  }
}

/** A size limit was exceeded (exit 4). */
export class SizeLimitError extends ScanbridgeError {
  constructor(code: string, message: string | LocalText, opts: ErrorOptions = {}) {
    super(code, ExitCode.sizeLimit, message, opts);
  }
}

/**
 * Network, authentication or host-key failure (exit 5). A refused login or host key (codes AUTH_*, HOST_KEY_*,
 * *_AUTH_FAILED) is fatal unless the site says otherwise: no other package gets past it either. Others are
 * "no-retry" unless the site marks them retryable.
 */
export class NetworkError extends ScanbridgeError {
  constructor(code: string, message: string | LocalText, opts: ErrorOptions = {}) {
    super(code, ExitCode.network, message, opts, /^(AUTH_|HOST_KEY_)|_AUTH_FAILED$/.test(code) ? "fatal" : "no-retry");
  }
}

/** What arrived at the destination is not what was sent (exit 6). */
export class RemoteVerificationError extends ScanbridgeError {
  constructor(code: string, message: string | LocalText, opts: ErrorOptions = {}) {
    super(code, ExitCode.remoteVerification, message, opts);
  }
}

/** A notification could not be delivered; it stays in the outbox (exit 7). */
export class NotifyError extends ScanbridgeError {
  constructor(code: string, message: string | LocalText, opts: ErrorOptions = {}) {
    super(code, ExitCode.notifyFailed, message, opts);
  }
}

/** The user interrupted (Ctrl-C, SIGTERM) (exit 130). Fatal: nothing more is tried. */
export class InterruptedError extends ScanbridgeError {
  constructor(message: string | LocalText = msg("error.interrupted"), opts: ErrorOptions = {}) {
    super("INTERRUPTED", ExitCode.interrupted, message, { ...opts, retryClass: "fatal" });
  }
}

/** Local file-system failure that is not the input's fault (disk full, permission on output). Exit 1 unless mapped. */
export class LocalIoError extends ScanbridgeError {
  constructor(code: string, message: string | LocalText, opts: ErrorOptions = {}) {
    super(code, ExitCode.unexpected, message, opts);
  }
}

/** Node and ssh2 error codes of failures that may go away on their own. */
const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ETIMEDOUT",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

/**
 * The retry class of any thrown value: a typed error's own; for a low-level (Node, ssh2) error "retry" when it is
 * a reset, a timeout or a busy server, else "no-retry". Interrupted is always fatal.
 */
export function retryClassOf(err: unknown): RetryClass {
  if (err instanceof ScanbridgeError) return err.retryClass;
  const e = err as { code?: unknown; level?: string; message?: unknown } | null | undefined;
  if (typeof e?.code === "string" && TRANSIENT_CODES.has(e.code)) return "retry";
  if (e?.level === "client-socket" || e?.level === "client-timeout") return "retry";
  const msg = typeof e?.message === "string" ? e.message : "";
  return /No response from server|Connection lost|Timed out while waiting for handshake|Not connected|socket hang up|Keepalive timeout|too many|busy|channel open failure/i.test(msg) ? "retry" : "no-retry";
}

/** Map any thrown value to an exit code. */
export function exitCodeOf(err: unknown): ExitCodeValue {
  if (err instanceof ScanbridgeError) return err.exitCode;
  return ExitCode.unexpected;
}

/** The stable code of any thrown value (a typed error's code, a Node errno code), or `fallback`. */
export function errorCode(err: unknown, fallback: string): string {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" || typeof code === "number" ? String(code) : fallback;
}

/** Throw InterruptedError when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError();
}

/** Translate a Node file-system error about our own output into a typed error with a hint. */
export function describeIoError(err: unknown, what: string | LocalText): ScanbridgeError {
  if (err instanceof ScanbridgeError) return err;
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case "ENOSPC":
    case "EDQUOT":
      return new LocalIoError("DISK_FULL", msg("error.diskFull", { what }), {
        hint: msg("error.diskFull.hint"),
        cause: err,
        retryClass: "fatal",
      });
    case "EACCES":
    case "EPERM":
      return new LocalIoError("PERMISSION_DENIED", msg("error.permission", { what }), {
        hint: msg("error.permission.hint"),
        cause: err,
      });
    case "EROFS":
      return new LocalIoError("READ_ONLY", msg("error.readOnly", { what }), {
        hint: msg("error.readOnly.hint"),
        cause: err,
      });
    default:
      return new LocalIoError("IO_ERROR", msg("error.io", { what, reason: e?.message ?? String(err) }), { cause: err });
  }
}
