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

/**
 * English a person reads, after removing what stays English on purpose in every language: error codes in [brackets],
 * command lines in `backticks`, quoted values, flags, paths, addresses and placeholders.
 */
function englishLeft(text: string, lang = "zh"): string[] {
  const stripped = text
    .replace(/\[[A-Z_]+\]/g, " ")
    .replace(/`[^`]*`/g, " ")
    .replace(/«[^»]*»|“[^”]*”|"[^"]*"|'[^']*'/g, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/\S*[/\\@:=.]\S*|--?[\w-]+|\b[A-Z][A-Z0-9_]{2,}\b/g, " ");
  const words = [...stripped.matchAll(/\b(the|is|are|not|and|or|of|to|a|an|no|was|with|for|from|cannot|could|missing|required|unknown|invalid|please|check|use|run|pass|give|file|package|server|destination|option|argument|command)\b/gi)].map((m) => m[0]);
  // "a", "no" and "use" are Spanish words too.
  return lang === "es" ? words.filter((w) => !/^(a|no|use)$/i.test(w)) : words;
}

describe("no English leaks into Spanish or Chinese failure messages", () => {
  const cases: Array<{ name: string; args: (dir: string) => string[]; files?: Record<string, string>; code: number; env?: Record<string, string> }> = [
    { name: "commander: missing argument", args: () => ["pack"], code: 2 },
    { name: "commander: unknown option", args: () => ["pack", "x", "--bogus"], code: 2 },
    { name: "commander: unknown command with a suggestion", args: () => ["pak"], code: 2 },
    { name: "commander: option without its value", args: () => ["upload", "--to"], code: 2 },
    { name: "unsupported destination scheme", args: () => ["send", SAMPLE, "--patient", PATIENT, "--to", "ftp://host/in"], code: 2 },
    { name: "password in the destination", args: () => ["send", SAMPLE, "--patient", PATIENT, "--to", "sftp://u:pw@host/in"], code: 2 },
    { name: "empty mailto:", args: () => ["send", SAMPLE, "--patient", PATIENT, "--to", "mailto:"], code: 2 },
    { name: "config file that is not an object, with the unknown-key warning", args: (d) => ["--config", join(d, "c.json"), "pack", SAMPLE], files: { "c.json": "[1]" }, code: 2 },
    { name: "unknown key in the config file", args: (d) => ["--config", join(d, "c.json"), "pack", SAMPLE], files: { "c.json": '{"patien": "x"}' }, code: 2 },
    { name: "upload of a missing package", args: (d) => ["upload", join(d, "nope.zip"), "--to", join(d, "out")], code: 3 },
    { name: "notify with an unreadable receipt", args: (d) => ["notify", "--receipt", join(d, "nope.receipt.json"), "--email", "a@b.example", "--smtp", "smtp://mail.example", "--from", "x@y.example"], code: 2 },
    { name: "bad webhook", args: () => ["notify", "--retry", "--webhook", "http://hospital.example/hook"], code: 2 },
    { name: "init without a terminal", args: () => ["init"], code: 2 },
  ];
  for (const lang of ["es", "zh"]) {
    for (const c of cases) {
      it(`${lang}: ${c.name}`, async () => {
        const dir = mk(c.files ?? {});
        const r = await runCli(["--lang", lang, ...c.args(dir)], { cwd: dir, env: cleanEnv(mk(), c.env) });
        expect(r.code, r.stderr).toBe(c.code);
        expect(r.stderr).not.toBe("");
        expect(englishLeft(r.stderr, lang), r.stderr).toEqual([]);
      });
    }
  }

  it("the leak detector itself sees English", () => {
    expect(englishLeft("error: missing required argument 'input' [X]\nhint: Check the path.")).toEqual(["missing", "required", "argument", "Check", "the"]);
    expect(englishLeft("error: falta el argumento obligatorio «input» [X]\nsugerencia: Use --to, no a", "es")).toEqual([]);
  });
});
