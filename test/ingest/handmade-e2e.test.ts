/**
 * Hand-made packages through `watch --once`, each made as its real tool makes it (fixtures/handmade-zip.ts):
 * every one lands in ready/ under the right NFC name with byte-identical files and no junk, or is quarantined at
 * once with its reason. Writes the style -> result table to $SCANBRIDGE_HANDMADE_TABLE when set (closing note).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDicom } from "../../fixtures/dicom-builder.js";
import { make7z, makeDeflate64Zip, makeHandmadeZip, makeTar, writeZip, type HandFile, type ZipStyle } from "../../fixtures/handmade-zip.js";
import { writeRar5 } from "../../fixtures/rar5-builder.js";
import { runCli, cleanEnv } from "../helpers/cli.js";
import { tmp, walk } from "./helpers.js";

const dicom = (patient: string, n: number, study = "1.2.3.4", id = "PID-1") =>
  buildDicom({ specificCharacterSet: "ISO_IR 192", patientName: patient, patientId: id, studyInstanceUid: study, seriesInstanceUid: `${study}.1`, sopInstanceUid: `${study}.1.${n}`, modality: "CT", pixelDataBytes: 2048 + n });
/** A Word letter as Word writes it: a zip whose first entry is [Content_Types].xml. */
const docx = () => writeZip([{ name: Buffer.from("[Content_Types].xml"), data: Buffer.from("<Types/>") }, { name: Buffer.from("word/document.xml"), data: Buffer.from("<w:document>Referral letter</w:document>") }]).buf;
const filesFor = (dicomName: string): HandFile[] => [
  { path: "CT/IM0001", data: dicom(dicomName, 1) },
  { path: "CT/IM0002", data: dicom(dicomName, 2) },
  { path: "report.pdf", data: Buffer.from("%PDF-1.4 synthetic report") },
  { path: "Referral letter.docx", data: docx() },
];

interface Case {
  label: string;
  upload: string;
  bytes: Buffer;
  /** Expected ready folder name (NFC) and files (relative, with their bytes); undefined: quarantined. */
  ready?: { name: string; files: HandFile[]; review?: boolean };
  quarantined?: string;
}

const cases: Case[] = [];
const styleCase = (style: ZipStyle, name: string, dicomName: string) => {
  const files = filesFor(dicomName);
  cases.push({ label: style, upload: `${name}.zip`, bytes: makeHandmadeZip(style, name, files), ready: { name: name.normalize("NFC"), files } });
};

describe("hand-made packages through watch --once", () => {
  let dir: string;
  let table = "";
  beforeAll(async () => {
    dir = tmp("sb-handmade-");
    styleCase("infozip", "José Álvarez", "Álvarez^José");
    styleCase("7zip", "Ana Núñez", "Núñez^Ana");
    styleCase("explorer-cp437", "José Garcia", "Garcia^José");
    styleCase("explorer-cp850", "María Álvarez", "Álvarez^María");
    styleCase("explorer-cp936", "王小明", "王^小明");
    styleCase("explorer-cp720", "علي حسن", "حسن^علي");
    styleCase("explorer-cp932", "山田十郎", "山田^十郎");
    styleCase("powershell", "Jürgen Groß", "Groß^Jürgen");
    styleCase("macos", "Zoë Ångström", "Ångström^Zoë");
    styleCase("nfd-flag", "Renée Müller", "Müller^Renée");
    styleCase("nfd-noflag", "Ségolène Brûlé", "Brûlé^Ségolène");
    // No root folder: the files zipped from inside the folder; the ready folder is named after the upload.
    const loose = filesFor("Gómez^Pedro");
    cases.push({ label: "no root folder (Explorer, CP437)", upload: "Pedro Gómez.zip", bytes: makeHandmadeZip("explorer-cp437", undefined, loose), ready: { name: "Pedro Gómez", files: loose } });
    // A zip per image.
    const perImage = [{ path: "IM1.zip", data: makeHandmadeZip("infozip", undefined, [{ path: "IM1.dcm", data: dicom("Ruiz^Carla", 1) }]) }, { path: "IM2.zip", data: makeHandmadeZip("infozip", undefined, [{ path: "IM2.dcm", data: dicom("Ruiz^Carla", 2) }]) }];
    cases.push({ label: "a zip per image", upload: "Carla Ruiz.zip", bytes: makeHandmadeZip("infozip", "Carla Ruiz", perImage), ready: { name: "Carla Ruiz", files: [{ path: "IM1/IM1.dcm", data: dicom("Ruiz^Carla", 1) }, { path: "IM2/IM2.dcm", data: dicom("Ruiz^Carla", 2) }] } });
    // A zip inside the zip (a re-zipped package).
    const innerFiles = filesFor("Ruiz^Carlos");
    const inner = makeHandmadeZip("infozip", "Carlos Ruiz", innerFiles);
    cases.push({ label: "zip inside zip", upload: "Carlos Ruiz.zip", bytes: makeHandmadeZip("7zip", undefined, [{ path: "Carlos Ruiz.zip", data: inner }]), ready: { name: "Carlos Ruiz", files: innerFiles } });
    // A copied viewer CD: programs left out and recorded.
    const cd = [...filesFor("Sánchez^Laura"), { path: "Viewer/RadiAnt.exe", data: Buffer.concat([Buffer.from("MZ"), Buffer.alloc(200)]) }, { path: "autorun.inf", data: Buffer.from("[autorun]\nopen=Viewer\\RadiAnt.exe\n") }];
    cases.push({ label: "viewer CD copied", upload: "Laura Sánchez.zip", bytes: makeHandmadeZip("explorer-cp850", "Laura Sánchez", cd), ready: { name: "Laura Sánchez", files: filesFor("Sánchez^Laura") } });
    // Deflate64 (what Explorer writes for large files), .7z, .tar.gz, a .7z renamed .zip.
    const big = [...filesFor("Ortega^Inés"), { path: "CT/big.raw", data: Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251)) }];
    cases.push({ label: "Deflate64 (7z -mm=Deflate64)", upload: "Inés Ortega.zip", bytes: makeDeflate64Zip("Inés Ortega", big), ready: { name: "Inés Ortega", files: big } });
    cases.push({ label: ".7z upload (Debian 7z)", upload: "Marta Díaz.7z", bytes: make7z("Marta Díaz", filesFor("Díaz^Marta")), ready: { name: "Marta Díaz", files: filesFor("Díaz^Marta") } });
    const rarFiles = filesFor("Castro^Nuria");
    cases.push({ label: ".rar upload (RAR 5, fixtures/rar5-builder.ts)", upload: "Nuria Castro.rar", bytes: writeRar5([{ name: "Nuria Castro", dir: true }, ...rarFiles.map((f) => ({ name: `Nuria Castro/${f.path}`, data: f.data }))]), ready: { name: "Nuria Castro", files: rarFiles } });
    cases.push({ label: ".tar.gz upload (GNU tar)", upload: "Luis Pérez.tar.gz", bytes: makeTar("Luis Pérez", filesFor("Pérez^Luis"), true), ready: { name: "Luis Pérez", files: filesFor("Pérez^Luis") } });
    cases.push({ label: ".7z renamed .zip", upload: "Sofía Vega.zip", bytes: make7z("Sofía Vega", filesFor("Vega^Sofía")), ready: { name: "Sofía Vega", files: filesFor("Vega^Sofía") } });
    // Two patients in one hand-made folder: filed, flagged NEEDS-REVIEW.
    const two = [{ path: "a/IM1", data: dicom("Gil^Elena", 1, "1.2.3.4", "P-1") }, { path: "b/IM1", data: dicom("Moreno^Pablo", 1, "1.2.3.9", "P-2") }];
    cases.push({ label: "two patients in one zip", upload: "Elena Gil.zip", bytes: makeHandmadeZip("infozip", "Elena Gil", two), ready: { name: "Elena Gil", files: two, review: true } });
    // Refused at once, with a reason: not an archive; a password-protected zip.
    cases.push({ label: "not an archive (named .zip)", upload: "Broken Upload.zip", bytes: Buffer.from("this is not a zip at all, just text".repeat(10)), quarantined: "UNKNOWN_ARCHIVE" });
    const enc = makeHandmadeZip("infozip", "Locked", [{ path: "a.dcm", data: Buffer.from("x") }]);
    const encrypted = Buffer.from(enc);
    // Set the encryption bit in every header (local and central): a password-protected zip as readers see it.
    for (let i = 0; i + 4 <= encrypted.length; i++) {
      const sig = encrypted.readUInt32LE(i);
      if (sig === 0x04034b50) encrypted.writeUInt16LE(encrypted.readUInt16LE(i + 6) | 1, i + 6);
      if (sig === 0x02014b50) encrypted.writeUInt16LE(encrypted.readUInt16LE(i + 8) | 1, i + 8);
    }
    cases.push({ label: "password-protected zip", upload: "Locked.zip", bytes: encrypted, quarantined: "ENCRYPTED_ENTRY" });

    const drop = join(dir, "drop");
    mkdirSync(drop, { recursive: true });
    for (const c of cases) writeFileSync(join(drop, c.upload), c.bytes);
  }, 120_000);
  afterAll(() => {
    if (process.env.SCANBRIDGE_HANDMADE_TABLE) writeFileSync(process.env.SCANBRIDGE_HANDMADE_TABLE, table);
    rmSync(dir, { recursive: true, force: true });
  });

  it("files each under its NFC name with byte-identical files and no junk, or quarantines it at once with its reason", async () => {
    const ready = join(dir, "ready");
    const audit = join(dir, "audit.jsonl");
    const r = await runCli(["watch", join(dir, "drop"), "--ready", ready, "--once", "--settle", "0", "--json", "--audit", audit, "--audit-names", "--verbose"], { cwd: dir, env: cleanEnv(dir), timeoutMs: 240_000 });
    const events = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    const rows: string[] = ["| style | upload | result |", "| --- | --- | --- |"];
    const failures: string[] = [];
    for (const c of cases) {
      const ev = events.find((e) => (e.event === "ready" || e.event === "quarantined") && e.file === c.upload);
      let result = ev ? `${String(ev.event)}` : "no event";
      if (ev?.event === "ready") {
        const rel = String(ev.readyRel);
        result += ` → ready/${rel}`;
        if (ev.nameEncoding) result += ` (names read as ${(ev.nameEncoding as { encoding: string }).encoding})`;
        if ((ev.leftOut as Record<string, number> | undefined) && Object.keys(ev.leftOut as object).length) result += `, left out ${JSON.stringify(ev.leftOut)}`;
        if ((ev.needsReview as string[] | undefined)?.length) result += `, NEEDS-REVIEW ${(ev.needsReview as string[]).join(",")}`;
      } else if (ev) result += `: ${(ev.problems as string[]).join(", ")}`;
      rows.push(`| ${c.label} | ${c.upload} | ${result} |`);
      if (c.ready) {
        if (ev?.event !== "ready" || ev.readyRel !== c.ready.name) {
          failures.push(`${c.label}: expected ready/${c.ready.name}, got ${result}`);
          continue;
        }
        const folder = join(ready, c.ready.name);
        // Beside the patient's files: scanbridge's manifest, the review marker, the specialist's page (issue 13).
        const got = walk(folder).filter((f) => f !== "scanbridge-intake.json" && f !== "NEEDS-REVIEW.txt" && f !== "index.html" && !f.startsWith("index_files/"));
        const want = c.ready.files.map((f) => f.path.normalize("NFC")).sort();
        if (JSON.stringify(got) !== JSON.stringify(want)) failures.push(`${c.label}: files ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
        for (const f of c.ready.files) {
          const p = join(folder, f.path.normalize("NFC"));
          if (existsSync(p) && !readFileSync(p).equals(f.data)) failures.push(`${c.label}: ${f.path} differs`);
        }
        const manifest = JSON.parse(readFileSync(join(folder, "scanbridge-intake.json"), "utf8")) as { sealed: boolean; files: Array<{ path: string }> };
        if (manifest.sealed !== false || manifest.files.length !== want.length) failures.push(`${c.label}: intake manifest wrong`);
        if (existsSync(join(folder, "NEEDS-REVIEW.txt")) !== (c.ready.review === true)) failures.push(`${c.label}: NEEDS-REVIEW marker ${c.ready.review ? "missing" : "unexpected"}`);
      } else if (ev?.event !== "quarantined" || !(ev.problems as string[]).includes(c.quarantined!)) {
        failures.push(`${c.label}: expected quarantine with ${c.quarantined}, got ${result}`);
      }
    }
    table = rows.join("\n") + "\n";
    expect(failures, `${table}\n${r.stderr.slice(-3000)}`).toEqual([]);
    // Nothing left in the drop folder.
    expect(readdirSync(join(dir, "drop")).filter((f) => !["archive", "quarantine", "processing", "notifications"].includes(f) && !f.startsWith("."))).toEqual([]);
    // No junk anywhere in ready/.
    expect(walk(ready).filter((f) => /(^|\/)(__MACOSX|\.DS_Store|\._|Thumbs\.db|autorun\.inf)/.test(f) || /\.exe$/i.test(f))).toEqual([]);
    // The audit records say unsealed, where it went, and how names were read.
    const records = readFileSync(audit, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const cp936 = records.find((x) => x.event === "ready" && x.file === "王小明.zip")!;
    expect(cp936).toMatchObject({ unsealed: true, readyRel: "王小明", nameEncoding: { encoding: "cp936" } });
    expect(records.find((x) => x.event === "ready" && x.file === "Elena Gil.zip")).toMatchObject({ needsReview: ["multiple-patients"], patients: 2 });
  }, 300_000);
});

describe("one classification table for pack, verify and intake", () => {
  let dir: string;
  beforeAll(() => {
    dir = tmp("sb-classify-");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a Word referral letter (and every other kind pack keeps) survives pack -> verify -> watch", async () => {
    const input = join(dir, "in");
    const odt = writeZip([{ name: Buffer.from("mimetype"), data: Buffer.from("application/vnd.oasis.opendocument.text"), method: 0 }, { name: Buffer.from("content.xml"), data: Buffer.from("<office:document/>") }]).buf;
    const xlsx = writeZip([{ name: Buffer.from("[Content_Types].xml"), data: Buffer.from("<Types/>") }, { name: Buffer.from("xl/workbook.xml"), data: Buffer.from("<workbook/>") }]).buf;
    const kept: HandFile[] = [
      { path: "CT/IM0001", data: dicom("Test^Ana", 1) },
      { path: "Referral letter.docx", data: docx() },
      { path: "labs.xlsx", data: xlsx },
      { path: "notes.odt", data: odt },
      { path: "report.pdf", data: Buffer.from("%PDF-1.4 synthetic") },
      { path: "photo.jpg", data: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]) },
      { path: "readme.txt", data: Buffer.from("plain text") },
    ];
    for (const f of kept) {
      mkdirSync(join(input, f.path, ".."), { recursive: true });
      writeFileSync(join(input, f.path), f.data);
    }
    const env = cleanEnv(dir);
    const out = join(dir, "out");
    const p = await runCli(["pack", input, "--patient", "Ana Test", "--out", out, "--json"], { cwd: dir, env });
    expect(p.code, p.stderr).toBe(0);
    const zip = join(out, "Ana Test.zip");
    const v = await runCli(["verify", zip, "--json", "--sealed-only"], { cwd: dir, env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const drop = join(dir, "drop");
    mkdirSync(drop);
    writeFileSync(join(drop, "Ana Test.zip"), readFileSync(zip));
    writeFileSync(join(drop, "Ana Test.zip.sha256"), readFileSync(`${zip}.sha256`));
    const w = await runCli(["watch", drop, "--ready", join(dir, "ready"), "--once", "--settle", "0", "--json", "--sealed-only"], { cwd: dir, env });
    expect(w.code, w.stderr).toBe(0);
    for (const f of kept) expect(readFileSync(join(dir, "ready", "Ana Test", f.path)).equals(f.data)).toBe(true);
  }, 120_000);
});
