// A minimal SSH server (ssh2) on 127.0.0.1 that presents a throw-away host key and refuses every login:
// enough for `init` to read and pin the host key fingerprint.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import ssh2 from "ssh2";
import { testdir } from "../helpers/cli.js";

/** A running stub with the fingerprint ssh-keygen reports for its key. */
export interface SshStub {
  port: number;
  fingerprint: string;
  stop(): Promise<void>;
}

/** Start the stub; the fingerprint comes from `ssh-keygen -l -E sha256`, independent of our code. */
export async function startSshStub(): Promise<SshStub> {
  const dir = testdir({}, "sb-hostkey-");
  const key = join(dir, "host_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key], { stdio: "ignore" });
  const fingerprint = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${key}.pub`], { encoding: "utf8" }).split(/\s+/)[1]!;
  const server = new ssh2.Server({ hostKeys: [readFileSync(key)] }, (client) => {
    client.on("authentication", (ctx) => ctx.reject());
    client.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return { port, fingerprint, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
