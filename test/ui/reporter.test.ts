import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { InputError } from "../../src/errors.js";
import { msg, setLanguage, type MessageValues } from "../../src/i18n/index.js";
import { formatBytes, formatProgressBar } from "../../src/ui/format.js";
import { createReporter, type ReporterMode } from "../../src/ui/reporter.js";

function capture(mode: ReporterMode, verbose = false) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d) => (out += d));
  stderr.on("data", (d) => (err += d));
  const r = createReporter({ mode, color: false, verbose, stdout, stderr, throttleMs: 0 });
  return { r, out: () => out, err: () => err };
}

describe("reporter", () => {
  it("--json prints exactly one JSON object on stdout, with warnings inside it", () => {
    const c = capture("json");
    c.r.emit({ type: "step", id: "zip", label: "Zipping" });
    c.r.emit({ type: "progress", id: "zip", done: 5, total: 10, unit: "bytes" });
    c.r.emit({ type: "warn", code: "W1", message: "careful", privateLines: ["Patient Name"] });
    c.r.result({ size: 3 }, ["human line"]);
    const parsed = JSON.parse(c.out());
    expect(parsed).toEqual({ ok: true, size: 3, warnings: [{ code: "W1", message: "careful" }] });
    expect(c.err()).toBe("");
  });
  it("--json failures are one JSON object too, without private lines unless verbose", () => {
    const c = capture("json");
    c.r.fail(new InputError("PATIENT_MISMATCH", "mismatch", { hint: "h", privateLines: ["Secret^Name"], details: { patients: 2 } }), false);
    const parsed = JSON.parse(c.out());
    expect(parsed.ok).toBe(false);
    expect(parsed.error).toMatchObject({ code: "PATIENT_MISMATCH", exitCode: 3, hint: "h", patients: 2 });
    expect(c.out()).not.toContain("Secret");
    const v = capture("json", true);
    v.r.fail(new InputError("PATIENT_MISMATCH", "mismatch", { privateLines: ["Secret^Name"] }), false);
    expect(JSON.parse(v.out()).error.privateLines).toEqual(["Secret^Name"]);
  });
  it("plain mode: progress lines on stderr, result on stdout; private lines only with --verbose", () => {
    const c = capture("plain");
    c.r.emit({ type: "step", id: "zip", label: "Zipping" });
    c.r.emit({ type: "warn", code: "W", message: "left out 2 programs", privateLines: ["/media/cd/Secret Name/x.exe"] });
    c.r.emit({ type: "step-done", id: "zip" });
    c.r.result({}, ["Packaged 3 files"]);
    expect(c.out()).toBe("Packaged 3 files\n");
    expect(c.err()).toContain("warning: left out 2 programs");
    expect(c.err()).not.toContain("Secret Name");
    const v = capture("plain", true);
    v.r.emit({ type: "warn", code: "W", message: "m", privateLines: ["detail"] });
    expect(v.err()).toContain("detail");
  });
  it("step labels and result lines given lazily are put into words only where a person reads them, in the reader's language", () => {
    // A count whose value cannot be read: formatting the label would throw.
    const unreadable = (): MessageValues => Object.defineProperty({}, "n", { enumerable: true, get: () => { throw new Error("label formatted"); } }) as MessageValues;
    for (const mode of ["json", "quiet"] as const) {
      const c = capture(mode);
      c.r.emit({ type: "step", id: "scan", label: msg("step.scan.done", unreadable()) });
      c.r.emit({ type: "step-done", id: "scan", label: msg("step.scan.done", unreadable()) });
      c.r.result({ n: 1 }, () => {
        throw new Error("human lines made");
      });
      expect(c.err()).toBe("");
      expect(c.out()).toBe(mode === "json" ? '{\n  "ok": true,\n  "n": 1,\n  "warnings": []\n}\n' : "");
    }
    try {
      setLanguage("es");
      const c = capture("plain");
      c.r.emit({ type: "step", id: "scan", label: msg("step.scan") });
      c.r.emit({ type: "step-done", id: "scan", label: msg("step.scan.done", { n: 3 }) });
      expect(c.err()).toContain("Comprobando los archivos");
      expect(c.err()).toContain("Comprobados 3 archivos");
      c.r.result({}, () => ["made when shown"]);
      expect(c.out()).toBe("made when shown\n");
    } finally {
      setLanguage("en");
    }
  });
  it("quiet mode prints errors only", () => {
    const c = capture("quiet");
    c.r.emit({ type: "step", id: "a", label: "A" });
    c.r.emit({ type: "warn", code: "W", message: "w" });
    c.r.result({ a: 1 }, ["line"]);
    expect(c.out()).toBe("");
    expect(c.err()).toBe("");
    c.r.fail(new InputError("X", "bad input", { hint: "fix it" }), false);
    expect(c.err()).toContain("error: bad input [X]");
    expect(c.err()).toContain("hint: fix it");
  });
  it("an unexpected error asks for a report and hides the stack without --debug", () => {
    const c = capture("plain");
    c.r.fail(new Error("boom"), false);
    expect(c.err()).toContain("please report");
    expect(c.err()).not.toContain("at ");
  });
});

describe("formatting", () => {
  it("formats sizes and a progress bar with rate and ETA", () => {
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(5_000_000)).toBe("5.0 MB");
    expect(formatBytes(1_234_000_000)).toBe("1.2 GB");
    const bar = formatProgressBar(50, 100, 10, "bytes", 10);
    expect(bar).toBe("[#####-----] 50% 50 B/100 B 10 B/s ETA 5s");
  });
});
