import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageDicom, transcodeDicom } from "../../fixtures/media-builder.js";
import { cleanEnv, ROOT, waitCli, tempDirs } from "../helpers/cli.js";
import { makeTestCert, startSmtpServer, type TestCert, type TestSmtpServer } from "../helpers/smtp.js";
import { startSshd, type SshdServer } from "../helpers/sshd.js";

// Slow: builds the Linux single-file executable with `scripts/dist.mjs` (esbuild, SEA blob, postject into the
// official Node binary from the npm registry, cached after the first run). SCANBRIDGE_FAST=1 skips it.
const slow = process.env.SCANBRIDGE_FAST === "1";
const PATIENT = "José Álvarez Núñez";
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
const mk = tempDirs();

let exe: string;
let out: string;
let sshd: SshdServer;
let smtp: TestSmtpServer;
let cert: TestCert;
beforeAll(async () => {
  if (slow) return;
  out = mk();
  const build = spawnSync(process.execPath, [join(ROOT, "scripts", "dist.mjs"), "--target", "linux-x64", "--out", out], { cwd: ROOT, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`dist failed:\n${build.stderr}`);
  exe = join(out, `scanbridge-${pkg.version}-linux-x64`);
  sshd = await startSshd();
  cert = makeTestCert();
  smtp = await startSmtpServer({ cert });
}, 600_000);
afterAll(async () => {
  await smtp?.stop();
  await sshd?.stop();
});

describe.skipIf(slow)("the Linux single-file executable", () => {
  it("is one executable file listed in SHA256SUMS", () => {
    expect(statSync(exe).mode & 0o111).not.toBe(0);
    expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toBe(`${sha(exe)}  scanbridge-${pkg.version}-linux-x64\n`);
  });

  it("runs without node_modules or Node: --version, and the whole send over SFTP with an e-mail to the coordinator", async () => {
    const work = mk();
    // No PATH to node, no NODE_PATH, run from a folder with no node_modules above it.
    const env = { ...cleanEnv(mk(), { SCANBRIDGE_KEY_PASSPHRASE: "" }), PATH: "/usr/bin:/bin", NODE_PATH: "" };
    const version = spawnSync(exe, ["--version"], { cwd: work, env, encoding: "utf8" });
    expect(version.stdout.trim()).toBe(pkg.version);

    const before = smtp.messages.length;
    // Asynchronously: the SMTP server runs in this process.
    const r = await waitCli(spawn(exe, [
      "send", join(ROOT, "fixtures", "sample"), "--patient", PATIENT, "--to", sshd.url("inbox"), "--identity", sshd.privateKeyPath,
      "--known-hosts", sshd.knownHostsPath, "--verify", "--email", "intl@hospital.example", "--smtp", smtp.url, "--smtp-ca", cert.caFile,
      "--from", "clinic@clinica.example", "--json",
    ], { cwd: work, env, stdio: ["pipe", "pipe", "pipe"] }));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    const res = JSON.parse(r.stdout);
    expect(res.package.files.byKind).toEqual({ dicom: 11, dicomdir: 1, document: 1 });
    expect(res.upload.verified).toBe("sha256");
    expect(sha(join(sshd.home, "inbox", `${PATIENT}.zip`))).toBe(res.package.sha256);
    const mails = smtp.messages.slice(before);
    expect(mails.flatMap((m) => m.envelopeTo)).toEqual(["intl@hospital.example"]);
    expect(mails[0]!.text).toContain(res.package.sha256);
  });

  it("speaks the system's language, like the npm install", () => {
    const env = { ...cleanEnv(mk()), SCANBRIDGE_LANG: "es" };
    const r = spawnSync(exe, ["inspect", join(ROOT, "fixtures", "sample")], { cwd: mk(), env, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("Se empaquetarían 13 archivos (11 DICOM, 1 DICOMDIR, 1 documento)");
  });

  it("decodes compressed previews with the embedded WASM codecs (media), leaving no temporary copy behind", async () => {
    // RLE Lossless: uncompressed images are rendered without dcmjs-imaging, compressed ones need its WASM decoders.
    const image = imageDicom({ patientName: "Alvarez Nunez^Jose", patientId: "P1", studyInstanceUid: "1.2.3", seriesInstanceUid: "1.2.3.1", sopInstanceUid: "1.2.3.1.1", modality: "CT", seed: 3 });
    const cd = mk({ "IMG0001": await transcodeDicom(image, "1.2.840.10008.1.2.5") });
    const work = mk();
    const tmp = mk();
    const env = { ...cleanEnv(mk()), PATH: "/usr/bin:/bin", NODE_PATH: "", TMPDIR: tmp };
    const pack = spawnSync(exe, ["pack", cd, "--patient", PATIENT, "--out", work, "--json"], { cwd: work, env, encoding: "utf8" });
    expect(pack.status, pack.stdout + pack.stderr).toBe(0);
    const zip = JSON.parse(pack.stdout).package as string;
    const media = spawnSync(exe, ["media", zip, "--out", join(work, "medium"), "--json"], { cwd: work, env, encoding: "utf8" });
    expect(media.status, media.stdout + media.stderr).toBe(0);
    expect(JSON.parse(media.stdout).thumbnails).toEqual({ made: 1, failed: 0 });
    expect(readdirSync(tmp)).toEqual([]);
  });
});
