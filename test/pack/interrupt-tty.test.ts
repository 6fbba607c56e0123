/*
 * Issue 12: Ctrl-C at any question exits 130 with "Interrupted", never "This is a bug"; a disc with two patients
 * offers the choice at a terminal; `scanbridge` with no command prints its usage and exits 2.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeDicomTree } from "../../fixtures/dicom-builder.js";
import { BIN, cleanEnv, runCli, tempDirs } from "../helpers/cli.js";
import { hasTmux, startTerminal, type Terminal } from "../helpers/tmux.js";
import { readZip } from "../helpers/zip.js";

const terms: Terminal[] = [];
const mk = tempDirs();
afterAll(() => {
  terms.forEach((t) => t.close());
});
const term = (args: string[]): Terminal => {
  const t = startTerminal([process.execPath, BIN, ...args], { ...cleanEnv(mk()), TERM: "xterm-256color" });
  terms.push(t);
  return t;
};

async function expectInterrupted(t: Terminal, prompt: RegExp): Promise<void> {
  await t.waitFor(prompt);
  t.key("C-c");
  expect(await t.exitCode()).toBe(130);
  const screen = t.screen();
  expect(screen).toMatch(/Interrupted/);
  expect(screen).not.toMatch(/bug|unexpected/i);
}

describe.skipIf(!hasTmux)("Ctrl-C at every question exits 130 (tmux)", () => {
  it("at pack's name prompt", async () => {
    const input = mk();
    await writeDicomTree(input, { patients: [{ name: "Lima^Ana", id: "A-1", studies: [{ series: 1, imagesPerSeries: 1 }] }], layout: "flat" });
    const out = mk();
    await expectInterrupted(term(["pack", input, "--out", out]), /Patient's full name/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("at the mismatch confirmation", async () => {
    const input = mk();
    await writeDicomTree(input, { patients: [{ name: "Pereira^Maria", id: "M-7", studies: [{ series: 1, imagesPerSeries: 1 }] }], layout: "flat" });
    const out = mk();
    await expectInterrupted(term(["pack", input, "--patient", "Ana Lima", "--out", out]), /Package them anyway/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("at init's first question", async () => {
    await expectInterrupted(term(["init"]), /Who is sending/);
  });
});

describe.skipIf(!hasTmux)("a disc with two patients at a terminal (tmux)", () => {
  it("offers whose scans to pack, and packs only the chosen patient's", async () => {
    const input = mk();
    await writeDicomTree(input, {
      patients: [
        { name: "Lima^Ana", id: "A-17", birthDate: "19900101", studies: [{ description: "CT CHEST", modality: "CT", series: 1, imagesPerSeries: 3 }] },
        { name: "Stone^Robert", id: "B-99", birthDate: "19700505", studies: [{ description: "MR KNEE", modality: "MR", series: 1, imagesPerSeries: 2 }] },
      ],
    });
    const out = mk();
    const t = term(["pack", input, "--patient", "Robert Stone", "--out", out]);
    const s = await t.waitFor(/Whose scans should go in this package/);
    expect(s).toMatch(/Lima\^Ana\s+ID A-17.*CT CHEST/);
    expect(s).toMatch(/Stone\^Robert\s+ID B-99.*MR KNEE/);
    // The first choice is the patient with more files (Ana); move down to Robert.
    await t.answer(/Whose scans should go in this package/, undefined, "Down", "Enter");
    expect(await t.exitCode()).toBe(0);
    const manifest = JSON.parse((await readZip(join(out, "Robert Stone.zip"))).find((e) => e.name.endsWith("/manifest.json"))!.data.toString()) as { onlyPatient: unknown; totals: { byKind: unknown } };
    expect(manifest.onlyPatient).toEqual({ id: "B-99" });
    expect(manifest.totals.byKind).toEqual({ dicom: 2 });
  });

  it("a single-patient disc: inspect at a terminal says whose scans they are", async () => {
    const input = mk();
    await writeDicomTree(input, { patients: [{ name: "Lima^Ana", id: "A-17", studies: [{ description: "CT CHEST", modality: "CT", series: 1, imagesPerSeries: 1 }] }], layout: "flat" });
    const t = term(["inspect", input]);
    expect(await t.exitCode()).toBe(0);
    expect(t.screen()).toMatch(/Scans of Lima\^Ana\s+ID A-17/);
  });
});

describe("scanbridge with no command", () => {
  it("prints its usage on stderr and exits 2, as git, curl and tar do", async () => {
    const r = await runCli([], { env: cleanEnv(mk()) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Usage: scanbridge/);
    expect(r.stdout).toBe("");
    const help = await runCli(["--help"], { env: cleanEnv(mk()) });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: scanbridge/);
  });

  it("inspect --help offers no options that write or override", async () => {
    const r = await runCli(["inspect", "--help"], { env: cleanEnv(mk()) });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--only-patient/);
    expect(r.stdout).not.toMatch(/--out|--force|--allow-patient-mismatch|--allow-unchecked|--store|--level/);
  });
});
