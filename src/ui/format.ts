import { t } from "../i18n/index.js";

/** Human-readable byte size (decimal units, as file managers and the office's "5 MB" rule use). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return "?";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} ${units[i]}` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** Human-readable duration for an ETA. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** A text progress bar: `[#####-----] 50% 1.2 MB/2.4 MB 12 MB/s ETA 3s`. */
export function formatProgressBar(done: number, total: number | undefined, ratePerSec: number, unit: "bytes" | "files", width = 24): string {
  const fmt = unit === "bytes" ? formatBytes : (n: number) => String(n);
  if (!total || total <= 0) return `${fmt(done)}${ratePerSec > 0 ? ` ${fmt(ratePerSec)}/s` : ""}`;
  const frac = Math.max(0, Math.min(1, done / total));
  const filled = Math.round(frac * width);
  const eta = ratePerSec > 0 ? (total - done) / ratePerSec : NaN;
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${Math.floor(frac * 100)}% ${fmt(done)}/${fmt(total)}` +
    (ratePerSec > 0 ? ` ${fmt(ratePerSec)}/s ${t("progress.eta", { time: formatDuration(eta) })}` : "");
}
