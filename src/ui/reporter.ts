import { inspect } from "node:util";
import type { Ora } from "ora";
import type { StageEvent } from "./events.js";
import { formatProgressBar } from "./format.js";
import { ScanbridgeError } from "../errors.js";
import { localize, t } from "../i18n/index.js";

/** How output is shown: spinners on a TTY, plain lines, one JSON object, or nothing. */
export type ReporterMode = "tty" | "plain" | "json" | "quiet";

/** Options for createReporter. */
export interface ReporterOptions {
  mode: ReporterMode;
  color: boolean;
  verbose: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Milliseconds between progress redraws (tests set 0). */
  throttleMs?: number;
}

/** Everything a command's output goes through. */
export interface Reporter {
  readonly mode: ReporterMode;
  readonly verbose: boolean;
  /** Handle a progress event from a stage. */
  emit(event: StageEvent): void;
  /** Print the final result: a JSON object with --json, the human lines otherwise. */
  result(data: Record<string, unknown>, human: string[] | (() => string[])): void;
  /** Print a failure. */
  fail(err: unknown, debug: boolean): void;
  /** For long-running commands (watch): one event line, JSON Lines with --json. */
  event(data: Record<string, unknown>, human: string): void;
  /** Stop spinners. */
  close(): void;
}

const ansi = (color: boolean) => ({
  red: (s: string) => (color ? `\x1b[31m${s}\x1b[39m` : s),
  yellow: (s: string) => (color ? `\x1b[33m${s}\x1b[39m` : s),
  green: (s: string) => (color ? `\x1b[32m${s}\x1b[39m` : s),
  dim: (s: string) => (color ? `\x1b[2m${s}\x1b[22m` : s),
  bold: (s: string) => (color ? `\x1b[1m${s}\x1b[22m` : s),
});

interface ProgressState {
  label: string;
  started: number;
  lastDraw: number;
  samples: Array<[number, number]>;
}

let makeSpinner: typeof import("ora").default | undefined;

/**
 * Load the spinner library: only a terminal needs it, so --json, --quiet and piped runs start without it (it and
 * its dependencies take tens of milliseconds to load). The CLI calls this before a "tty" reporter is made; without
 * it, steps are plain lines.
 */
export async function loadSpinner(): Promise<void> {
  makeSpinner ??= (await import("ora")).default;
}

/** Build the reporter for a mode. */
export function createReporter(opts: ReporterOptions): Reporter {
  const c = ansi(opts.color);
  const warnings: Array<{ code: string; message: string }> = [];
  const steps = new Map<string, ProgressState>();
  let spinner: Ora | undefined;
  // Once JSON Lines events were printed (watch), the final result is one more line, not a pretty block.
  let streamed = false;
  const throttle = opts.throttleMs ?? 100;
  const err = (line: string) => {
    if (spinner?.isSpinning) spinner.clear();
    opts.stderr.write(line + "\n");
    if (spinner?.isSpinning) spinner.render();
  };

  const rate = (st: ProgressState, done: number): number => {
    const now = Date.now();
    st.samples.push([now, done]);
    while (st.samples.length > 2 && now - st.samples[0]![0] > 5000) st.samples.shift();
    const [t0, d0] = st.samples[0]!;
    return now > t0 ? ((done - d0) * 1000) / (now - t0) : 0;
  };

  return {
    mode: opts.mode,
    verbose: opts.verbose,
    emit(e) {
      if (e.type === "warn") {
        warnings.push({ code: e.code, message: e.message });
        if (opts.mode === "tty" || opts.mode === "plain") {
          err(c.yellow(t("report.warning", { message: localize(e.text ?? e.message) })));
          // PHI-bearing detail lines go to a person at a terminal, or with --verbose; never to logs.
          if (e.privateLines?.length && (opts.mode === "tty" || opts.verbose)) for (const l of e.privateLines) err(`  ${l}`);
        }
        return;
      }
      if (opts.mode === "json" || opts.mode === "quiet") return;
      switch (e.type) {
        case "step": {
          const label = localize(e.label);
          steps.set(e.id, { label, started: Date.now(), lastDraw: 0, samples: [] });
          if (opts.mode === "tty" && makeSpinner) {
            spinner?.stop();
            spinner = makeSpinner({ text: label, stream: opts.stderr as NodeJS.WriteStream, color: "cyan", isEnabled: true }).start();
          } else err(t("report.stepStarted", { label }));
          return;
        }
        case "progress": {
          const st = steps.get(e.id);
          if (!st || opts.mode !== "tty" || !spinner) return;
          const now = Date.now();
          const r = rate(st, e.done);
          if (now - st.lastDraw < throttle && e.done !== e.total) return;
          st.lastDraw = now;
          spinner.text = `${st.label} ${formatProgressBar(e.done, e.total, r, e.unit)}`;
          return;
        }
        case "step-done": {
          const st = steps.get(e.id);
          const label = e.label !== undefined ? localize(e.label) : (st?.label ?? e.id);
          steps.delete(e.id);
          if (opts.mode === "tty" && spinner) {
            if (e.ok === false) spinner.fail(label);
            else spinner.succeed(label);
            spinner = undefined;
          } else err(t(e.ok === false ? "report.failed" : "report.done", { label }));
          return;
        }
        case "info":
          err(e.message);
          return;
      }
    },
    result(data, human) {
      spinner?.stop();
      if (opts.mode === "json") {
        opts.stdout.write(JSON.stringify({ ok: true, ...data, warnings }, null, streamed ? undefined : 2) + "\n");
      } else if (opts.mode !== "quiet") {
        for (const line of typeof human === "function" ? human() : human) opts.stdout.write(line + "\n");
      }
    },
    event(data, human) {
      if (opts.mode === "json") {
        streamed = true;
        opts.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...data }) + "\n");
      }
      else if (opts.mode !== "quiet") err(human);
    },
    fail(e, debug) {
      if (spinner?.isSpinning) spinner.fail();
      spinner = undefined;
      const se = e instanceof ScanbridgeError ? e : undefined;
      if (opts.mode === "json") {
        const error: Record<string, unknown> = se
          ? { code: se.code, message: se.message, hint: se.hint, exitCode: se.exitCode, ...se.details }
          : { code: "UNEXPECTED", message: (e as Error)?.message ?? String(e), exitCode: 1 };
        if (se && opts.verbose && se.privateLines.length) error.privateLines = se.privateLines;
        opts.stdout.write(JSON.stringify({ ok: false, error, warnings }, null, streamed ? undefined : 2) + "\n");
        return;
      }
      if (se) {
        opts.stderr.write(c.red(t("report.error", { message: localize(se.text) })) + ` ${c.dim(`[${se.code}]`)}\n`);
        if (se.privateLines.length && (opts.mode === "tty" || opts.verbose)) for (const l of se.privateLines) opts.stderr.write(`  ${l}\n`);
        if (se.hintText) opts.stderr.write(`${t("report.hint", { hint: localize(se.hintText) })}\n`);
        if (debug && se.cause) opts.stderr.write(`${se.cause instanceof Error ? (se.cause.stack ?? se.cause.message) : inspect(se.cause)}\n`);
      } else {
        opts.stderr.write(c.red(t("report.unexpected", { message: (e as Error)?.message ?? String(e) })) + "\n");
        opts.stderr.write(t("report.pleaseReport") + "\n");
        if (debug) opts.stderr.write(`${(e as Error)?.stack ?? ""}\n`);
      }
    },
    close() {
      spinner?.stop();
      spinner = undefined;
    },
  };
}

/** A reporter for tests: records every event and result. */
export interface RecordingReporter extends Reporter {
  events: StageEvent[];
  results: Array<Record<string, unknown>>;
  failures: unknown[];
  lines: Array<Record<string, unknown>>;
}

/** Create a RecordingReporter. */
export function createRecordingReporter(): RecordingReporter {
  const r: RecordingReporter = {
    mode: "quiet",
    verbose: false,
    events: [],
    results: [],
    failures: [],
    lines: [],
    emit: (e) => void r.events.push(e),
    result: (d) => void r.results.push(d),
    event: (d) => void r.lines.push(d),
    fail: (e) => void r.failures.push(e),
    close: () => {},
  };
  return r;
}
