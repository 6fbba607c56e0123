// Runs the built CLI as a user would; the build itself happens once in test/global-setup.ts.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runCli as run, type CliRun } from "../helpers/cli.js";

export { ROOT, type CliRun };

/** The CLI is built by the global setup; fail clearly if it is not there. */
export async function ensureBuilt(): Promise<void> {
  if (!existsSync(join(ROOT, "dist/src/cli.js"))) throw new Error("dist/ is missing: run `npm run build` (npm test does)");
}

/** A clean environment: no SCANBRIDGE_* from the developer's shell, a private HOME and XDG_CONFIG_HOME. */
export function cleanEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: join(home, ".config"), LANG: "C.UTF-8", NO_COLOR: "1", ...extra };
}

/** Run `node bin/scanbridge.js ...args` asynchronously (test servers in this process keep answering). */
export function runCli(args: string[], opts: { env: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number }): Promise<CliRun> {
  return run(args, { ...opts, input: opts.input ?? "", timeoutMs: opts.timeoutMs ?? 60_000 });
}
