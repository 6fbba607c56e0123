import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cleanEnv, ROOT, runCli, tempDirs } from "../helpers/cli.js";

const PATIENT = "José Álvarez Núñez";
const SAMPLE = join(ROOT, "fixtures", "sample");
const mk = tempDirs();

describe("the patient's language", () => {
  it("speaks Spanish with --lang es: steps, warnings, the result and the summary of studies", async () => {
    const work = mk();
    const r = await runCli(["--lang", "es", "pack", SAMPLE, "--patient", PATIENT], { cwd: work, env: cleanEnv(mk()) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("hecho: Comprobados 17 archivos");
    expect(r.stderr).toContain("aviso: se excluyeron 4 archivos del programa visor");
    expect(r.stdout).toContain("Empaquetados 13 archivos (11 DICOM, 1 DICOMDIR, 1 documento)");
    expect(r.stdout).toContain("Imágenes: 2 estudios · CT CHEST 2025-03-02 (2 series, 8 imágenes) · MR BRAIN 2025-04-11 (1 serie, 3 imágenes)");
    expect(r.stdout).toContain("cabe en un correo electrónico");
  });

  it("follows the system locale (LANG=zh_CN.UTF-8) when neither --lang nor SCANBRIDGE_LANG is set, errors and hints included", async () => {
    const env = cleanEnv(mk(), { LANG: "zh_CN.UTF-8" });
    delete env.SCANBRIDGE_LANG;
    delete env.LC_ALL;
    delete env.LC_MESSAGES;
    const r = await runCli(["pack", join(mk(), "missing"), "--patient", PATIENT], { cwd: mk(), env });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("错误：第 1 个输入（共 1 个）不存在 [INPUT_NOT_FOUND]");
    expect(r.stderr).toContain("提示：请检查路径：光盘或 U 盘是否已挂载？");
  });

  it("keeps --json English and stable in any language: messages, hints, warnings and codes", async () => {
    const env = cleanEnv(mk(), { SCANBRIDGE_LANG: "zh" });
    const ok = await runCli(["inspect", SAMPLE, "--json"], { cwd: mk(), env });
    expect(ok.code, ok.stderr).toBe(0);
    const data = JSON.parse(ok.stdout);
    expect(data.dicom.studyLine).toBe("2 studies · CT CHEST 2025-03-02 (2 series, 8 images) · MR BRAIN 2025-04-11 (1 series, 3 images)");
    expect(data.warnings).toContainEqual({ code: "VIEWER_LEFT_OUT", message: "left out 4 files of viewer software (166 B)" });
    const bad = await runCli(["pack", SAMPLE, "--json"], { cwd: mk(), env });
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error).toMatchObject({ code: "PATIENT_REQUIRED", message: "The patient's name is required", hint: 'Add --patient "Full Name" (as written in the passport).' });
  });

  it("shows --help in the chosen language, and refuses a language it does not have", async () => {
    const help = await runCli(["--lang", "es", "send", "--help"], { env: cleanEnv(mk()) });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Uso: scanbridge send/m);
    expect(help.stdout).toContain("todo el procedimiento de una vez");
    expect(help.stdout).toContain("Ejemplos:");
    const fr = await runCli(["--lang", "fr", "inspect", SAMPLE], { env: cleanEnv(mk()) });
    expect(fr.code).toBe(2);
    expect(fr.stderr).toContain('error: Language "fr" is not available [LANGUAGE_UNSUPPORTED]');
  });
});
