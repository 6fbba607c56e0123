import { execFileSync } from "node:child_process";

/** Whether tmux is installed (terminal tests are skipped, with a reason, when it is not). */
export const hasTmux = (() => {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** A program running at a real terminal (a tmux pane), driven by typing as a person would. Its methods do not use
 * `this` (`this: void`), so a test may take them apart: `const { answer, waitFor } = term`. */
export interface Terminal {
  screen(this: void): string;
  waitFor(this: void, re: RegExp, timeoutMs?: number): Promise<string>;
  type(this: void, text: string): void;
  key(this: void, ...keys: string[]): void;
  /** Wait for a prompt, let it finish drawing, type the answer and press the keys (default Enter). */
  answer(this: void, prompt: RegExp, text?: string, ...keys: string[]): Promise<void>;
  /** Wait for the program to end; returns its exit code. */
  exitCode(this: void, timeoutMs?: number): Promise<number>;
  close(this: void): void;
}

const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;

/** Start `argv` in a fresh tmux server with exactly `env`, in a 160x50 terminal. */
export function startTerminal(argv: string[], env: NodeJS.ProcessEnv, cwd?: string): Terminal {
  const sock = `sb-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const tmux = (...args: string[]) => execFileSync("tmux", ["-L", sock, ...args], { encoding: "utf8" });
  const envArgs = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  const cmd = ["env", "-i", ...envArgs, ...argv].map(quote).join(" ");
  const shell = `${cwd ? `cd ${quote(cwd)} && ` : ""}${cmd}; echo "EXIT=$?"; sleep 120`;
  tmux("new-session", "-d", "-s", "w", "-x", "160", "-y", "50", shell);
  const t: Terminal = {
    screen: () => tmux("capture-pane", "-p", "-J", "-t", "w", "-S", "-300"),
    async waitFor(re, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const s = t.screen();
        if (re.test(s)) return s;
        if (Date.now() > end) throw new Error(`timed out waiting for ${re}; screen:\n${s}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    type: (text) => void tmux("send-keys", "-t", "w", "-l", text),
    key: (...keys) => void tmux("send-keys", "-t", "w", ...keys),
    async answer(prompt, text, ...keys) {
      await t.waitFor(prompt);
      await new Promise((r) => setTimeout(r, 150));
      if (text) t.type(text);
      t.key(...(keys.length ? keys : ["Enter"]));
    },
    async exitCode(timeoutMs = 60_000) {
      const s = await t.waitFor(/EXIT=\d+/, timeoutMs);
      return Number(/EXIT=(\d+)/.exec(s)![1]);
    },
    close() {
      try {
        tmux("kill-server");
      } catch {
        // already gone
      }
    },
  };
  return t;
}
