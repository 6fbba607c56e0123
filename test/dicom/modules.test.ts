import { describe, expect, it, vi } from "vitest";

describe("src/dicom modules", () => {
  it("have no side effects when imported: nothing printed, no globals, no timers", async () => {
    const globalsBefore = new Set(Object.keys(globalThis));
    const writes = vi.spyOn(process.stdout, "write");
    const errors = vi.spyOn(process.stderr, "write");
    const log = vi.spyOn(console, "log");
    const warn = vi.spyOn(console, "warn");
    const timer = vi.spyOn(globalThis, "setTimeout");
    const mods = await Promise.all([
      import("../../src/dicom/charset.js"),
      import("../../src/dicom/read.js"),
      import("../../src/dicom/identity.js"),
      import("../../src/dicom/summary.js"),
      import("../../src/dicom/viewer.js"),
    ]);
    expect(mods.every((m) => Object.keys(m).length > 0)).toBe(true);
    for (const spy of [writes, errors, log, warn, timer]) expect(spy).not.toHaveBeenCalled();
    expect(Object.keys(globalThis).filter((k) => !globalsBefore.has(k))).toEqual([]);
    vi.restoreAllMocks();
  });
});
