import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkHostKey, fingerprintOfKey, hostFieldMatches, normaliseFingerprint, parseKnownHosts, saveKnownHost } from "../../src/transfer/hostkeys.js";
import { fingerprintOf, generateKey } from "../helpers/sshd.js";

const dir = mkdtempSync(join(tmpdir(), "sb-hostkeys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keyPair(name: string) {
  const priv = generateKey(join(dir, name));
  const line = readFileSync(priv + ".pub", "utf8").trim().split(" ");
  return { type: line[0]!, b64: line[1]!, blob: Buffer.from(line[1]!, "base64"), fp: fingerprintOf(priv + ".pub") };
}
const a = keyPair("a");
const b = keyPair("b");

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
}

describe("host keys", () => {
  it("computes fingerprints exactly as ssh-keygen -l -E sha256", () => {
    expect(fingerprintOfKey(a.blob)).toBe(a.fp);
  });

  it("normalises pinned fingerprints and rejects malformed ones", () => {
    expect(normaliseFingerprint(a.fp.replace("SHA256:", "sha256:") + "=")).toBe(a.fp);
    expect(() => normaliseFingerprint("MD5:aa:bb")).toThrow(/SHA256/);
  });

  it("matches plain, [host]:port, wildcard, negated and hashed host fields", () => {
    expect(hostFieldMatches("upload.example.org", "upload.example.org", 22)).toBe(true);
    expect(hostFieldMatches("upload.example.org", "upload.example.org", 2222)).toBe(false);
    expect(hostFieldMatches("[upload.example.org]:2222", "upload.example.org", 2222)).toBe(true);
    expect(hostFieldMatches("*.example.org,!evil.example.org", "upload.example.org", 22)).toBe(true);
    expect(hostFieldMatches("*.example.org,!evil.example.org", "evil.example.org", 22)).toBe(false);
    expect(hostFieldMatches(hashed("[10.0.0.5]:2222"), "10.0.0.5", 2222)).toBe(true);
    expect(hostFieldMatches(hashed("[10.0.0.5]:2222"), "10.0.0.6", 2222)).toBe(false);
    expect(hostFieldMatches("[1.2.3.4]:22", "1.2.3.4", 22)).toBe(false); // port 22 is recorded bare
  });

  it("says match, mismatch, unknown or revoked", () => {
    const kh = join(dir, "kh1");
    writeFileSync(kh, `# comment\n[h]:2222 ${a.type} ${a.b64}\nother ${b.type} ${b.b64}\ngarbage line\n`);
    const trust = (host: string, port: number) => ({ host, port, knownHostsFiles: [kh, join(dir, "missing")] });
    expect(checkHostKey(a.blob, trust("h", 2222))).toBe("match");
    expect(checkHostKey(b.blob, trust("h", 2222))).toBe("mismatch");
    expect(checkHostKey(a.blob, trust("new", 22))).toBe("unknown");
    writeFileSync(kh, `@revoked * ${a.type} ${a.b64}\n[h]:2222 ${a.type} ${a.b64}\n`, { flag: "a" });
    expect(checkHostKey(a.blob, trust("h", 2222))).toBe("revoked");
    expect(checkHostKey(a.blob, { host: "h", port: 2222, knownHostsFiles: [], pinnedFingerprint: a.fp })).toBe("match");
    expect(checkHostKey(b.blob, { host: "h", port: 2222, knownHostsFiles: [kh], pinnedFingerprint: a.fp })).toBe("mismatch");
  });

  it("saves a host key in [host]:port form to a new 0600 file that reads back as a match", () => {
    const kh = join(dir, "sub", ".ssh", "known_hosts");
    saveKnownHost(kh, "127.0.0.1", 2200, a.blob);
    expect(statSync(kh).mode & 0o777).toBe(0o600);
    expect(readFileSync(kh, "utf8")).toBe(`[127.0.0.1]:2200 ${a.type} ${a.b64}\n`);
    expect(parseKnownHosts(readFileSync(kh, "utf8"))).toHaveLength(1);
    expect(checkHostKey(a.blob, { host: "127.0.0.1", port: 2200, knownHostsFiles: [kh] })).toBe("match");
  });
});
