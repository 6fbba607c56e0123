// The upload stage in-process (as `send` calls it), against real sshd instances with different server setups.
import { createHash, randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadPackageTo, type UploadStageDeps } from "../../src/commands/upload.js";
import type { StageEvent } from "../../src/ui/events.js";
import { createScriptedPrompter, type Prompter } from "../../src/ui/prompter.js";
import { startSshd, type SshdServer } from "../helpers/sshd.js";
import { startRelay } from "./relay.js";

const PATIENT = "Zoë Ångström-Testpatient";
let work: string;
const servers: SshdServer[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "sb-stage-"));
});
afterAll(async () => {
  for (const s of servers) await s.stop();
  rmSync(work, { recursive: true, force: true });
});

async function server(opts: Parameters<typeof startSshd>[0] = {}): Promise<SshdServer> {
  const s = await startSshd(opts);
  servers.push(s);
  return s;
}

function pkg(size = 1_000_000): { path: string; sha256: string } {
  const dir = mkdtempSync(join(work, "pkg-"));
  const path = join(dir, `${PATIENT}.zip`);
  const data = randomBytes(size);
  writeFileSync(path, data);
  return { path, sha256: createHash("sha256").update(data).digest("hex") };
}

function deps(opts: { interactive?: boolean; prompter?: Prompter; home?: string } = {}): UploadStageDeps & { events: StageEvent[] } {
  const events: StageEvent[] = [];
  const home = opts.home ?? mkdtempSync(join(work, "home-"));
  return {
    env: { HOME: home },
    cwd: work,
    interactive: opts.interactive ?? false,
    prompter: opts.prompter ?? createScriptedPrompter([]),
    emit: (e) => void events.push(e),
    signal: new AbortController().signal,
    verbose: false,
    events,
  };
}

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

describe("upload stage", () => {
  it("at a terminal, asks about an unknown host key and saves it only on yes", async () => {
    const s = await server();
    const p = pkg();
    const home = mkdtempSync(join(work, "home-"));
    const no = deps({ interactive: true, prompter: createScriptedPrompter([false]), home });
    await expect(uploadPackageTo(p.path, { to: s.url("tty"), sftpPassword: s.password }, no)).rejects.toMatchObject({ code: "HOST_KEY_UNKNOWN", exitCode: 5 });
    expect(existsSync(join(home, ".ssh", "known_hosts"))).toBe(false);
    expect(existsSync(join(s.home, "tty"))).toBe(false);

    const yes = deps({ interactive: true, prompter: createScriptedPrompter([true]), home });
    const r = await uploadPackageTo(p.path, { to: s.url("tty"), sftpPassword: s.password }, yes);
    expect(r.sha256).toBe(p.sha256);
    expect(readFileSync(join(home, ".ssh", "known_hosts"), "utf8")).toBe(`[127.0.0.1]:${s.port} ${s.hostPublicKey}\n`);
    // Next time no question is asked (the scripted prompter throws on any question).
    const again = deps({ interactive: true, home });
    await uploadPackageTo(p.path, { to: s.url("tty"), sftpPassword: s.password, force: true }, again);
  });

  it("at a terminal, asks for the password when there is no key, agent or SCANBRIDGE_SFTP_PASSWORD", async () => {
    const s = await server();
    const p = pkg();
    const d = deps({ interactive: true, prompter: createScriptedPrompter([s.password]) });
    const r = await uploadPackageTo(p.path, { to: s.url("asked"), knownHosts: s.knownHostsPath }, d);
    expect(sha(join(s.home, "asked", `${PATIENT}.zip`))).toBe(p.sha256);
    expect(r.attempts).toBe(1);
    // Not at a terminal: refused at once, nobody asked.
    await expect(uploadPackageTo(p.path, { to: s.url("asked2"), knownHosts: s.knownHostsPath }, deps())).rejects.toMatchObject({ code: "AUTH_NO_CREDENTIALS", exitCode: 5 });
  });

  it("answers keyboard-interactive password prompts (PAM, password method disabled)", async () => {
    const s = await server({ usePam: true, passwordAuthentication: false });
    const p = pkg();
    const r = await uploadPackageTo(p.path, { to: s.url("kbd"), knownHosts: s.knownHostsPath, sftpPassword: s.password }, deps());
    expect(r.sha256).toBe(p.sha256);
    expect(s.log()).toMatch(/Accepted keyboard-interactive/);
  });

  it("uploads in place and says so when the server forbids renames", async () => {
    const s = await server({ subsystem: "internal-sftp -P rename,posix-rename" });
    const p = pkg(3_000_000);
    const d = deps();
    const r = await uploadPackageTo(p.path, { to: s.url("norename"), knownHosts: s.knownHostsPath, sftpPassword: s.password, verify: true }, d);
    expect(r.placement).toBe("in-place");
    expect(d.events.filter((e) => e.type === "warn").map((e) => (e as { code: string }).code)).toContain("RENAME_FORBIDDEN");
    expect(readdirSync(join(s.home, "norename")).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    expect(sha(join(s.home, "norename", `${PATIENT}.zip`))).toBe(p.sha256);
  });

  it("resumes an in-place upload (renames forbidden) after a cut, to a byte-identical file", async () => {
    const s = await server({ subsystem: "internal-sftp -P rename,posix-rename" });
    const size = 8 * 1024 * 1024;
    const p = pkg(size);
    // The first connection carries the partial, then half of the in-place copy, then drops.
    const relay = await startRelay(s.port, { cuts: [1.5 * size] });
    const kh = join(work, "kh-inplace");
    writeFileSync(kh, `[127.0.0.1]:${relay.port} ${s.hostPublicKey}\n`);
    try {
      const d = deps();
      const r = await uploadPackageTo(p.path, { to: `sftp://${s.user}@127.0.0.1:${relay.port}/inplace-cut`, knownHosts: kh, sftpPassword: s.password, retryDelay: 0.2, verify: true }, d);
      expect(r).toMatchObject({ placement: "in-place", attempts: 2, verified: "sha256" });
      expect(relay.forwarded()[1]!).toBeLessThan(0.8 * size);
      expect(readdirSync(join(s.home, "inplace-cut")).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
      expect(sha(join(s.home, "inplace-cut", `${PATIENT}.zip`))).toBe(p.sha256);
    } finally {
      await relay.close();
    }
  });

  // Between the cut and the retry the half-written in-place file is replaced (a new file renamed over it, so a
  // late write of the cut session lands in the old one): with other bytes of its size, or with more than the
  // package. The retry must not resume from it: it says why (as for a partial) and writes the package from 0.
  for (const [what, why] of [["other bytes", /does not match/], ["more than the package", /larger/]] as const) {
    it(`an in-place upload cut and retried starts over, with a warning, when the file there holds ${what}`, async () => {
      const s = await server({ subsystem: "internal-sftp -P rename,posix-rename" });
      const size = 8 * 1024 * 1024;
      const p = pkg(size);
      const relay = await startRelay(s.port, { cuts: [1.5 * size] });
      const kh = join(work, `kh-inplace-${what.length}`);
      writeFileSync(kh, `[127.0.0.1]:${relay.port} ${s.hostPublicKey}\n`);
      const folder = `inplace-replaced-${what.length}`;
      const target = join(s.home, folder, `${PATIENT}.zip`);
      let replacedAt = -1;
      const d = deps();
      const emit = d.emit;
      d.emit = (e) => {
        if (e.type === "warn" && (e as { code: string }).code === "UPLOAD_RETRY" && replacedAt < 0) {
          replacedAt = statSync(target).size;
          const bytes = what === "other bytes" ? randomBytes(replacedAt) : Buffer.concat([readFileSync(p.path), randomBytes(1000)]);
          writeFileSync(`${target}.new`, bytes);
          chownSync(`${target}.new`, s.uid, s.gid);
          renameSync(`${target}.new`, target);
        }
        return emit(e);
      };
      try {
        const r = await uploadPackageTo(p.path, { to: `sftp://${s.user}@127.0.0.1:${relay.port}/${folder}`, knownHosts: kh, sftpPassword: s.password, retryDelay: 0.2 }, d);
        expect(replacedAt).toBeGreaterThan(0);
        expect(r).toMatchObject({ placement: "in-place", attempts: 2 });
        const warnings = d.events.filter((e) => e.type === "warn") as Array<{ code: string; message: string }>;
        const discarded = warnings.filter((w) => w.code === "PARTIAL_DISCARDED");
        expect(discarded).toHaveLength(1);
        expect(discarded[0]!.message).toMatch(why);
        expect(JSON.stringify(warnings)).not.toContain(PATIENT);
        // Written again from the first byte: the whole package went over the second connection.
        expect(relay.forwarded()[1]!).toBeGreaterThan(size);
        expect(readdirSync(join(s.home, folder)).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
        expect(sha(target)).toBe(p.sha256);
      } finally {
        await relay.close();
      }
    });
  }

  it("falls back to a plain rename when posix-rename is not offered (replacing is then not atomic)", async () => {
    const s = await server({ subsystem: "internal-sftp -P posix-rename" });
    const p = pkg();
    const first = await uploadPackageTo(p.path, { to: s.url("plain"), knownHosts: s.knownHostsPath, sftpPassword: s.password }, deps());
    expect(first.placement).toBe("atomic-rename");
    const second = await uploadPackageTo(p.path, { to: s.url("plain"), knownHosts: s.knownHostsPath, sftpPassword: s.password, force: true }, deps());
    expect(second.placement).toBe("rename");
    expect(sha(join(s.home, "plain", `${PATIENT}.zip`))).toBe(p.sha256);
  });

  it("to a local folder: reports steps and monotonic byte progress; warnings and errors never name the patient", async () => {
    const p = pkg(5_000_000);
    const out = join(work, "local-out");
    const d = deps();
    const r = await uploadPackageTo(p.path, { to: out, verify: true }, d);
    expect(r.receipt.destination).toMatch(/^file:\/\//);
    const prog = d.events.filter((e) => e.type === "progress" && e.id === "upload") as Array<{ done: number; total?: number }>;
    expect(prog.at(-1)).toMatchObject({ done: 5_000_000, total: 5_000_000 });
    for (let i = 1; i < prog.length; i++) expect(prog[i]!.done).toBeGreaterThanOrEqual(prog[i - 1]!.done);
    expect(d.events.filter((e) => e.type === "step").map((e) => (e as { id: string }).id)).toEqual(expect.arrayContaining(["upload-connect", "upload", "upload-verify", "upload-finish"]));
    expect(JSON.stringify(d.events)).not.toContain("Zoë");
    const err = await uploadPackageTo(p.path, { to: out }, deps()).catch((e) => e);
    expect(err.code).toBe("REMOTE_EXISTS");
    expect(err.message).not.toContain("Zoë");
  });

  it("with --verify, refuses a package that does not match its .sha256 file and leaves nothing behind", async () => {
    const p = pkg();
    writeFileSync(p.path + ".sha256", `${"0".repeat(64)}  ${PATIENT}.zip\n`);
    const out = join(work, "corrupt-out");
    mkdirSync(out);
    await expect(uploadPackageTo(p.path, { to: out, verify: true }, deps())).rejects.toMatchObject({ code: "PACKAGE_CORRUPT", exitCode: 3 });
    expect(readdirSync(out)).toEqual([]);
  });

  it("without a .sha256 file, computes the checksum itself and writes it in sha256sum format", async () => {
    const p = pkg();
    const out = join(work, "nosum-out");
    const r = await uploadPackageTo(p.path, { to: out }, deps());
    expect(r.sha256).toBe(p.sha256);
    expect(readFileSync(join(out, `${PATIENT}.zip.sha256`), "utf8")).toBe(`${p.sha256}  ${PATIENT}.zip\n`);
  });

  it("finishes an upload that stopped between the rename and the marker, after checking the content", async () => {
    const p = pkg();
    const out = join(work, "nomarker-out");
    mkdirSync(out);
    writeFileSync(join(out, `${PATIENT}.zip`), readFileSync(p.path));
    const r = await uploadPackageTo(p.path, { to: out }, deps());
    expect(r).toMatchObject({ completedEarlierUpload: true, bytesSent: 0, verified: "sha256" });
    expect(readdirSync(out).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    // Same name and size but other bytes: a different package; refused, nothing marked complete.
    const out2 = join(work, "nomarker-out2");
    mkdirSync(out2);
    writeFileSync(join(out2, `${PATIENT}.zip`), randomBytes(1_000_000));
    await expect(uploadPackageTo(p.path, { to: out2 }, deps())).rejects.toMatchObject({ code: "REMOTE_HASH_MISMATCH", exitCode: 6 });
    expect(readdirSync(out2)).toEqual([`${PATIENT}.zip`]);
  });
});
