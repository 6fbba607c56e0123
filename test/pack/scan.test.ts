import { execFileSync } from "node:child_process";
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildTruncatedDicom, writeDicomTree } from "../../fixtures/dicom-builder.js";
import { readDicomHeader } from "../../src/dicom/read.js";
import { HeaderUnread, scanInputs, type ScanResult } from "../../src/pack/scan.js";
import { tempDirs } from "../helpers/cli.js";

const tmp = tempDirs("sb-scan-");

/** A CD-like tree with everything the scan sorts: DICOM (two patients), a truncated one, a PDF, viewer software,
 * OS junk, a nested archive, links in and out, a FIFO. */
async function mixedTree(): Promise<{ root: string; outside: string }> {
  const root = tmp();
  const outside = tmp({ "elsewhere.pdf": "%PDF-1.4 outside" });
  await writeDicomTree(root, {
    patients: [
      { name: "Scan^Alpha", id: "A1", studies: [{ series: 2, imagesPerSeries: 3 }] },
      { name: "Scan^Beta", id: "B2", studies: [{ series: 1, imagesPerSeries: 2 }] },
    ],
    viewer: "generic",
  });
  writeFileSync(join(root, "report.pdf"), "%PDF-1.7 report");
  writeFileSync(join(root, "cut.dcm"), buildTruncatedDicom({ patientName: "Scan^Alpha", patientId: "A1" }, "pixel-data"));
  writeFileSync(join(root, "old.zip"), Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0]));
  writeFileSync(join(root, ".DS_Store"), "junk");
  mkdirSync(join(root, "deep", "er", "still"), { recursive: true });
  writeFileSync(join(root, "deep", "er", "still", "note.txt"), "a note");
  symlinkSync(join(outside, "elsewhere.pdf"), join(root, "link-out.pdf"));
  symlinkSync(join(root, "report.pdf"), join(root, "link-in.pdf"));
  execFileSync("mkfifo", [join(root, "pipe")]);
  return { root, outside };
}

/** What a scan found, without the parts that are objects of their own (headers compared by patient id). */
function summary(r: ScanResult) {
  return {
    files: r.files,
    excluded: r.excluded,
    archives: r.archives,
    unreadable: r.unreadable,
    headers: [...r.dicomHeaders!.entries()].map(([f, h]) => [f.absPath, h] as const).sort(([a], [b]) => (a < b ? -1 : 1)).map(([path, h]) =>
      ({ path, ...(h instanceof HeaderUnread ? { error: String(h.error) } : { id: h.patientId, truncated: h.truncated }) })),
  };
}

describe("scanInputs: direct and pooled reads", () => {
  it("finds the same files, exclusions, archives and DICOM headers either way", async () => {
    const { root } = await mixedTree();
    const direct = summary(await scanInputs([root], { cwd: root, io: "direct" }));
    const pooled = summary(await scanInputs([root], { cwd: root, io: "pooled" }));
    const auto = summary(await scanInputs([root], { cwd: root }));
    expect(pooled).toEqual(direct);
    expect(auto).toEqual(direct);
    // And what it found is right: 11 DICOM images + DICOMDIR + the truncated one, the PDF and the note.
    expect(direct.files.filter((f) => f.kind === "dicom").length).toBe(9);
    expect(direct.files.map((f) => f.relPath)).toEqual(expect.arrayContaining(["DICOMDIR", "report.pdf", "cut.dcm", "deep/er/still/note.txt"]));
    expect(direct.excluded).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: "pipe", reason: "special-file" }),
      expect.objectContaining({ path: ".DS_Store", reason: "os-junk" }),
      expect.objectContaining({ path: "link-out.pdf", reason: "symlink-outside-inputs" }),
    ]));
    expect(direct.archives.map((a) => a.relPath)).toEqual(["old.zip"]);
    // Every DICOM file's header was read: six images and the truncated file of A1, two of B2, and the DICOMDIR.
    const ids = direct.headers.map((h) => ("id" in h ? h.id : undefined) ?? "none");
    expect(ids.sort()).toEqual([...Array(7).fill("A1"), "B2", "B2", "none"]);
    expect(direct.headers.find((h) => h.path.endsWith("cut.dcm"))).toMatchObject({ id: "A1", truncated: expect.any(String) });
  });

  it("keeps each repeated header value once (the same objects across files), equal to each file's own header", async () => {
    const { root } = await mixedTree();
    const scan = await scanInputs([root], { cwd: root });
    const headers = [...scan.dicomHeaders!.entries()].flatMap(([f, h]) => (h instanceof HeaderUnread ? [] : [{ path: f.absPath, header: h }]));
    const alpha = headers.filter((h) => h.header.patientId === "A1" && !h.header.truncated);
    expect(alpha.length).toBe(6);
    // Every field reads the same as the file's own header (for...in: the own fields and the shared ones).
    const allFields = (h: object) => {
      const out: Record<string, unknown> = {};
      for (const k in h) out[k] = (h as Record<string, unknown>)[k];
      return out;
    };
    for (const { path, header } of headers) {
      expect(allFields(header), path).toEqual(await readDicomHeader(path, { tolerateTruncation: true }));
    }
    // A's images share one frozen part per series (patient, study, series, syntax): two series of three images;
    // each image keeps its own instance fields only.
    const bySeries = new Map<unknown, Set<unknown>>();
    for (const { header } of alpha) bySeries.set(header.seriesInstanceUid, (bySeries.get(header.seriesInstanceUid) ?? new Set()).add(Object.getPrototypeOf(header)));
    expect([...bySeries.values()].map((parts) => parts.size)).toEqual([1, 1]);
    expect(Object.isFrozen(Object.getPrototypeOf(alpha[0]!.header))).toBe(true);
    for (const { header } of alpha) expect(Object.keys(header).every((k) => ["sopInstanceUid", "instanceNumber", "bytesRead", "truncated"].includes(k))).toBe(true);
    // B2's images (another patient) do not share A's part.
    const b2 = headers.filter((h) => h.header.patientId === "B2");
    expect(Object.getPrototypeOf(b2[0]!.header)).not.toBe(Object.getPrototypeOf(alpha[0]!.header));
    // One name object, one study UID string for all of A1's images; instance UIDs stay each file's own.
    expect(new Set(alpha.map((h) => h.header.patientName)).size).toBe(1);
    expect(Object.isFrozen(alpha[0]!.header.patientName)).toBe(true);
    expect(new Set(alpha.map((h) => h.header.sopInstanceUid)).size).toBe(6);
  });

  it("lists a file once when inputs overlap (a folder, a file in it, a sub-folder of it), at its first place", async () => {
    const root = tmp({ "a/1.pdf": "%PDF-1.4", "a/b/2.pdf": "%PDF-1.4", "3.pdf": "%PDF-1.4" });
    const r = await scanInputs([root, join(root, "a", "1.pdf"), join(root, "a", "b")], { cwd: root });
    expect(r.files.map((f) => [f.input, f.relPath, f.absPath])).toEqual([
      [0, "3.pdf", join(root, "3.pdf")],
      [0, "a/1.pdf", join(root, "a", "1.pdf")],
      [0, "a/b/2.pdf", join(root, "a", "b", "2.pdf")],
    ]);
    // A file input on its own: its path is the one given, its relative path its name.
    const one = await scanInputs([join(root, "a", "b", "2.pdf")], { cwd: root });
    expect(one.files.map((f) => [f.relPath, f.absPath])).toEqual([["2.pdf", join(root, "a", "b", "2.pdf")]]);
  });

  it("reports a file gone since the walk as unreadable and goes on, either way", async () => {
    const root = tmp({ "a/1.pdf": "%PDF-1.4", "b.pdf": "%PDF-1.4" });
    for (const io of ["direct", "pooled"] as const) {
      const r = await scanInputs([root], { cwd: root, io, emit: (e) => {
        // The walk is over when the classification step starts: the file it found is gone by the time it is opened.
        if (e.type === "step" && e.id === "scan") renameSync(join(root, "b.pdf"), join(root, "b.moved"));
      } });
      expect(r.unreadable).toEqual([expect.objectContaining({ relPath: "b.pdf", code: "ENOENT" })]);
      expect(r.files.map((f) => f.relPath)).toEqual(["a/1.pdf"]);
      renameSync(join(root, "b.moved"), join(root, "b.pdf"));
    }
  });

  it("never waits on a FIFO swapped in for a file after the walk", async () => {
    const root = tmp({ "x.pdf": "%PDF-1.4", "y.pdf": "%PDF-1.4" });
    for (const io of ["direct", "pooled"] as const) {
      const r = await scanInputs([root], { cwd: root, io, emit: (e) => {
        if (e.type === "step" && e.id === "scan") {
          rmSync(join(root, "y.pdf"));
          execFileSync("mkfifo", [join(root, "y.pdf")]);
        }
      } });
      expect(r.excluded).toEqual([expect.objectContaining({ path: "y.pdf", reason: "special-file" })]);
      expect(r.files.map((f) => f.relPath)).toEqual(["x.pdf"]);
      rmSync(join(root, "y.pdf"));
      writeFileSync(join(root, "y.pdf"), "%PDF-1.4");
    }
  });
});

describe("scanInputs: what it keeps per file", () => {
  it("keeps exact sizes past 2 GiB and the paths as they are on disk, at any depth", async () => {
    const root = tmp();
    mkdirSync(join(root, "a", "b"), { recursive: true });
    writeFileSync(join(root, "a", "b", "small.pdf"), "%PDF-1.4 x");
    // Sparse: no disk space used. Sizes of 2^30 and more are not small integers to V8; they must stay exact.
    const sizes = { "big.dat": 3 * 2 ** 30 + 7, "edge.dat": 2 ** 30, "below.dat": 2 ** 30 - 1 };
    for (const [name, size] of Object.entries(sizes)) {
      writeFileSync(join(root, "a", name), "");
      execFileSync("truncate", ["-s", String(size), join(root, "a", name)]);
    }
    for (const io of ["direct", "pooled"] as const) {
      const scan = await scanInputs([root], { cwd: root, io });
      const byRel = new Map(scan.files.map((f) => [f.relPath, f]));
      for (const [name, size] of Object.entries(sizes)) expect(byRel.get(`a/${name}`)?.size).toBe(size);
      const small = byRel.get("a/b/small.pdf")!;
      expect(small.size).toBe(10);
      expect(small.absPath).toBe(join(root, "a", "b", "small.pdf"));
      expect(small.dir).toBe("a/b");
    }
  });
});
