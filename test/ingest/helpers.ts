import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

import { BIN, ROOT, testdir } from "../helpers/cli.js";

/** Repository root and the built CLI (shared with the other end-to-end tests). */
export { BIN, ROOT };

/** Result of a CLI run. */
export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A fresh temporary folder, removed after the test file (testdir's own clean-up). */
export function tmp(prefix = "sb-ingest-"): string {
  return testdir({}, prefix);
}

/** Environment without the developer's SCANBRIDGE_* settings or config. */
export function env(home: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SCANBRIDGE_")) e[k] = v;
  return { ...e, HOME: home, XDG_CONFIG_HOME: join(home, ".config"), NO_COLOR: "1" };
}

/** Start the CLI; `done` resolves with its exit status and output. */
export function start(args: string[], home: string): { child: ChildProcess; done: Promise<Run>; output: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: home, env: env(home), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<Run>((res, rej) => {
    child.on("error", rej);
    child.on("close", (code, signal) => res({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => stdout + stderr };
}

/** Run the CLI to completion. */
export async function run(args: string[], home: string, timeoutMs = 90_000): Promise<Run> {
  const p = start(args, home);
  const t = setTimeout(() => p.child.kill("SIGKILL"), timeoutMs);
  try {
    return await p.done;
  } finally {
    clearTimeout(t);
  }
}

/** Wait until `cond` holds, polling. */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Entries of a folder (empty when missing), hidden ones included. */
export function ls(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** Every file below a folder, as relative paths. */
export function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of (() => {
    try {
      return readdirSync(dir, { withFileTypes: true });
    } catch {
      return [];
    }
  })()) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push(p.slice(base.length + 1));
  }
  return out.sort();
}
