import type { LocalText } from "../i18n/index.js";

/**
 * Progress events that stages emit; the reporter decides how a person or a script sees them. Labels are kept as
 * messages (LocalText) and put into words only where a person will read them: --json and --quiet never show them,
 * and formatting one with a count loads ICU's plural data (~20 ms of a pack run, issue 15).
 */
export type StageEvent =
  | { type: "step"; id: string; label: LocalText | string }
  | { type: "progress"; id: string; done: number; total?: number; unit: "bytes" | "files" }
  | { type: "step-done"; id: string; label?: LocalText | string; ok?: boolean }
  | { type: "warn"; code: string; message: string; privateLines?: string[]; text?: LocalText }
  | { type: "info"; message: string };

/** Callback through which a stage reports progress. Stages never print. */
export type Emit = (event: StageEvent) => void;

/** An Emit that drops everything, for callers that do not care. */
export const noEmit: Emit = () => {};
