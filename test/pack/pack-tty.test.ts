import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeDicomTree } from "../../fixtures/dicom-builder.js";
import { BIN, cleanEnv, tempDirs } from "../helpers/cli.js";
import { hasTmux, startTerminal, type Terminal } from "../helpers/tmux.js";
import { readZip } from "../helpers/zip.js";

const terms: Terminal[] = [];
const mk = tempDirs();
afterAll(() => {
  terms.forEach((t) => t.close());
});

describe.skipIf(!hasTmux)("pack at a real terminal (tmux)", () => {
  it("asks for the patient's name when --patient is missing, shows progress, and writes the package", async () => {
    const input = mk();
    await writeDicomTree(input, { patients: [{ name: "Lima^Ana", id: "A-1", studies: [{ series: 2, imagesPerSeries: 5, date: "20250102", description: "CT HEAD", modality: "CT" }] }] });
    const out = mk();
    const t = startTerminal([process.execPath, BIN, "pack", input, "--out", out], { ...cleanEnv(mk()), TERM: "xterm-256color" });
    terms.push(t);
    await t.answer(/Patient's full name/, "Ana Lima");
    expect(await t.exitCode()).toBe(0);
    const screen = t.screen();
    expect(screen).toMatch(/Zipped 11 files/);
    expect(screen).toMatch(/1 study · CT HEAD 2025-01-02 \(2 series, 10 images\)/);
    expect(readdirSync(out).sort()).toEqual(["Ana Lima.zip", "Ana Lima.zip.sha256"]);
  });

  it("on a patient mismatch, shows who is in the files and packs only after an explicit yes", async () => {
    const input = mk();
    await writeDicomTree(input, { patients: [{ name: "Pereira^Maria", id: "M-7", studies: [{ series: 1, imagesPerSeries: 2 }] }], layout: "flat" });
    const out = mk();
    const no = startTerminal([process.execPath, BIN, "pack", input, "--patient", "Ana Lima", "--out", out], { ...cleanEnv(mk()), TERM: "xterm-256color" });
    terms.push(no);
    const s = await no.waitFor(/Package them anyway/);
    expect(s).toMatch(/Pereira\^Maria\s+ID M-7/);
    no.type("n");
    no.key("Enter");
    expect(await no.exitCode()).toBe(3);
    expect(readdirSync(out)).toEqual([]);

    const yes = startTerminal([process.execPath, BIN, "pack", input, "--patient", "Ana Lima", "--out", out], { ...cleanEnv(mk()), TERM: "xterm-256color" });
    terms.push(yes);
    await yes.answer(/Package them anyway/, "y");
    expect(await yes.exitCode()).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["Ana Lima.zip", "Ana Lima.zip.sha256"]);
    const manifest = JSON.parse((await readZip(join(out, "Ana Lima.zip"))).find((e) => e.name.endsWith("/manifest.json"))!.data.toString());
    expect(manifest.overrides).toEqual({ allowPatientMismatch: true });
  });
});
