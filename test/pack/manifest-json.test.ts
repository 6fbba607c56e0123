// manifest.json written in chunks (src/pack/manifest.ts manifestJsonChunks): exactly JSON.stringify(m, null, 2) + "\n",
// whatever the number of files, the characters in names and values, and the optional parts present.
import { describe, expect, it } from "vitest";
import { manifestJsonChunks, type Manifest, type ManifestFile } from "../../src/pack/manifest.js";

function manifest(files: ManifestFile[], extra: Partial<Manifest> = {}): Manifest {
  return {
    format: "scanbridge-package", formatVersion: 1, tool: { name: "scanbridge", version: "9.9.9" }, createdAt: "2026-12-01T00:00:00.000Z",
    root: "Zoë Ångström 王秀英", patient: { name: "Zoë Ångström 王秀英" }, files,
    totals: { files: files.length, bytes: files.reduce((s, f) => s + f.size, 0), byKind: { dicom: files.length } },
    excluded: [{ path: "setup.exe", reason: "executable", size: 10 }], ...extra,
  };
}

const file = (i: number): ManifestFile => ({
  path: `DICOM/SE${i % 7}/IM${i} "quoted" \\ back\nnewline \u0000 ${i % 3 === 0 ? "عربي" : "中文"}`,
  size: i * 1000,
  sha256: i.toString(16).padStart(64, "0"),
  kind: i % 5 === 0 ? "document" : "dicom",
  ...(i % 5 === 0 ? {} : { studyInstanceUid: "1.2.3", seriesInstanceUid: `1.2.3.${i % 7}` }),
});

describe("manifestJsonChunks", () => {
  it("makes each chunk only when it is asked for (the whole manifest is never in memory at once)", () => {
    const files = Array.from({ length: 300 }, (_, i) => file(i));
    const m = manifest(files);
    const chunks = manifestJsonChunks(m);
    const first = chunks.next();
    expect(first.done).toBe(false);
    // A file changed after the first chunk was made shows in the later chunks only: they are made on demand.
    files[299]!.path = "made-later.dcm";
    const rest = [...chunks];
    expect(rest).toHaveLength(2);
    expect(rest[1]!.toString("utf8")).toContain('"path": "made-later.dcm"');
  });

  for (const n of [0, 1, 127, 128, 129, 1000]) {
    it(`${n} file(s): the same bytes as JSON.stringify with two spaces, in ${n > 128 ? "several chunks" : "one chunk"}`, () => {
      const m = manifest(Array.from({ length: n }, (_, i) => file(i)), n === 1000 ? { overrides: { allowUnchecked: true, uncheckedFiles: ["a", "b"] }, onlyPatient: { id: "X" } } : {});
      const chunks = [...manifestJsonChunks(m)];
      expect(Buffer.concat(chunks).toString("utf8")).toBe(JSON.stringify(m, null, 2) + "\n");
      expect(chunks.length).toBe(Math.max(1, Math.ceil(n / 128)));
      expect(JSON.parse(Buffer.concat(chunks).toString("utf8"))).toEqual(JSON.parse(JSON.stringify(m)));
    });
  }

  it("a value that looks like the placeholder does not split the text", () => {
    const m = manifest([file(1), file(2)], { patient: { name: "\u0000files-00000000-0000-0000-0000-000000000000" } });
    expect(Buffer.concat([...manifestJsonChunks(m)]).toString("utf8")).toBe(JSON.stringify(m, null, 2) + "\n");
  });
});
