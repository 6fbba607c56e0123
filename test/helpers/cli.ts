import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";

/** Repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** The built CLI, exactly as a user runs it. */
export const BIN = join(ROOT, "bin", "scanbridge.js");

/** Result of running the CLI. */
export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Environment for CLI runs: isolated HOME and config, no colours, no inherited SCANBRIDGE_*, English messages. */
export function cleanEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SCANBRIDGE_") && k !== "SSH_AUTH_SOCK") env[k] = v;
  return { ...env, HOME: home, XDG_CONFIG_HOME: join(home, ".config"), NO_COLOR: "1", SCANBRIDGE_LANG: "en", ...extra };
}

/** Spawn the built CLI and wait for it to exit. */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  const child = spawnCli(args, opts);
  return waitCli(child, opts.input, opts.timeoutMs);
}

/** Start the built CLI without waiting (for interrupt tests). */
export function spawnCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
}

/** Collect a spawned CLI's output and exit status. */
export function waitCli(child: ChildProcess, input?: string, timeoutMs = 120_000): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`CLI timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** Folders made by testdir() in this test file, removed once all its tests have run. */
const made: string[] = [];
afterAll(() => {
  for (const d of made.splice(0)) removeDir(d);
}, 600_000);

/** A throw-away folder tree: `{ "a/b.txt": "text", "c.bin": Buffer }`. Returns its path; removed after the test file. */
export function testdir(files: Record<string, string | Buffer> = {}, prefix = "scanbridge-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  for (const [rel, content] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
  return dir;
}

/**
 * Throw-away folders for one test file with their own prefix: `const mk = tempDirs(); const dir = mk({ "a.txt": "x" });`.
 * Like every testdir() folder, each is removed after the file's tests (one `afterAll` for the file, registered when
 * this module loads). Removing a tree of tens of thousands of files or gigabytes takes as long as the disk needs, so
 * the hook waits up to ten minutes.
 */
export function tempDirs(prefix?: string): (files?: Record<string, string | Buffer>) => string {
  return (files = {}) => testdir(files, prefix);
}

/** Remove a throw-away folder. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}
