import { rmSync } from "node:fs";

const live = new Set<string>();

/** Remember a temporary file or folder so a hard exit (second Ctrl-C) can still remove it. */
export function trackTemp(path: string): void {
  live.add(path);
}

/** Forget a temporary path (it was renamed into place or already removed). */
export function untrackTemp(path: string): void {
  live.delete(path);
}

/** Remove every tracked temporary path synchronously; for the CLI's last-chance exit handler. */
export function removeTrackedTemps(): void {
  for (const p of live) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }
  live.clear();
}
