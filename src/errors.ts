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

/** Options every typed error accepts. */
export interface ErrorOptions {
  hint?: string;
  /** Structured details for --json output and tests. Never put PHI here unless verbose-only. */
  details?: Record<string, unknown>;
  /** Lines that may contain PHI: shown to the user at the terminal, never logged or put in JSON unless --verbose. */
  privateLines?: string[];
  cause?: unknown;
  retryable?: boolean;
}

/** Base of every error scanbridge throws on purpose: a stable code, a one-line hint and an exit code. */
export class ScanbridgeError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;
  readonly privateLines: string[];
  readonly retryable: boolean;

  constructor(code: string, exitCode: ExitCodeValue, message: string, opts: ErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.hint = opts.hint;
    this.details = opts.details ?? {};
    this.privateLines = opts.privateLines ?? [];
    this.retryable = opts.retryable ?? false;
  }
}

/** Bad flags or arguments (exit 2). */
export class UsageError extends ScanbridgeError {
  constructor(code: string, message: string, opts: ErrorOptions = {}) {
    super(code, ExitCode.usage, message, opts);
  }
}

/** The inputs or a package were checked and rejected (exit 3). */
export class InputError extends ScanbridgeError {
  constructor(code: string, message: string, opts: ErrorOptions = {}) {
    super(code, ExitCode.inputRejected, message, opts);
  }
}

/** A size limit was exceeded (exit 4). */
export class SizeLimitError extends ScanbridgeError {
  constructor(code: string, message: string, opts: ErrorOptions = {}) {
    super(code, ExitCode.sizeLimit, message, opts);
  }
}

/** Network, authentication or host-key failure (exit 5). `retryable` tells whether a retry may help. */
export class NetworkError extends ScanbridgeError {
  constructor(code: string, message: string, opts: ErrorOptions = {}) {
    super(code, ExitCode.network, message, opts);
  }
}

/** What arrived at the destination is not what was sent (exit 6). */
export class RemoteVerificationError extends ScanbridgeError {
  constructor(code: string, message: string, opts: ErrorOptions = {}) {
    super(code, ExitCode.remoteVerification, message, opts);
  }
}

/** A notification could not be delivered; it stays in the outbox (exit 7). */
export class NotifyError extends ScanbridgeError {
  constructor(code: string, message: string, opts: ErrorOptions = {}) {
    super(code, ExitCode.notifyFailed, message, opts);
  }
}

/** The user interrupted (Ctrl-C, SIGTERM) (exit 130). */
export class InterruptedError extends ScanbridgeError {
  constructor(message = "Interrupted", opts: ErrorOptions = {}) {
    super("INTERRUPTED", ExitCode.interrupted, message, opts);
  }
}

/** Local file-system failure that is not the input's fault (disk full, permission on output). Exit 1 unless mapped. */
export class LocalIoError extends ScanbridgeError {
  constructor(code: string, message: string, opts: ErrorOptions = {}) {
    super(code, ExitCode.unexpected, message, opts);
  }
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
export function describeIoError(err: unknown, what: string): ScanbridgeError {
  if (err instanceof ScanbridgeError) return err;
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case "ENOSPC":
    case "EDQUOT":
      return new LocalIoError("DISK_FULL", `No space left while writing ${what}`, {
        hint: "Free some disk space or choose another output folder with --out.",
        cause: err,
      });
    case "EACCES":
    case "EPERM":
      return new LocalIoError("PERMISSION_DENIED", `Permission denied while writing ${what}`, {
        hint: "Choose an output folder you can write to.",
        cause: err,
      });
    case "EROFS":
      return new LocalIoError("READ_ONLY", `Read-only file system while writing ${what}`, {
        hint: "Choose a writable output folder with --out.",
        cause: err,
      });
    default:
      return new LocalIoError("IO_ERROR", `Could not write ${what}: ${e?.message ?? String(err)}`, { cause: err });
  }
}
