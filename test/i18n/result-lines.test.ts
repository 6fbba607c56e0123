import { afterEach, describe, expect, it } from "vitest";
import { describeUpload } from "../../src/commands/upload.js";
import { setLanguage } from "../../src/i18n/index.js";
import type { UploadResult } from "../../src/transfer/upload.js";

/** An upload that used every optional line: resumed, several channels with a round trip, a retry, written in place. */
const result: UploadResult = {
  receipt: { package: "Paciente Sintético.zip", destination: "sftp://clinic@sftp.example.org/inbox" } as UploadResult["receipt"],
  receiptPath: "/tmp/Paciente Sintético.receipt.json",
  remotePath: "/inbox/Paciente Sintético.zip",
  size: 500 * 1024 * 1024,
  sha256: "a".repeat(64),
  bytesSent: 250 * 1024 * 1024,
  resumedFrom: 250 * 1024 * 1024,
  attempts: 2,
  verified: "size",
  placement: "in-place",
  durationMs: 9000,
  completedEarlierUpload: false,
  lanes: 6,
  lanesAdded: 0,
  rttMs: 150.4,
};

describe("upload's result lines", () => {
  afterEach(() => setLanguage("en"));

  it("are all in the reader's language, optional lines included", () => {
    setLanguage("es");
    const es = describeUpload(result).join("\n");
    expect(es).toContain("por 6 canales en paralelo (ida y vuelta 150 ms)");
    expect(es).toContain("hicieron falta 2 intentos");
    expect(es).toContain("recibo: /tmp/Paciente Sintético.receipt.json");
    expect(es).toContain("reanudado desde");
    expect(es).not.toMatch(/\b(resumed|parallel|channels|attempts|renames|server)\b|receipt:/);
    setLanguage("zh-Hans");
    const zh = describeUpload(result).join("\n");
    expect(zh).toContain("通过 6 个并行通道（往返 150 毫秒）");
    expect(zh).not.toMatch(/\b(resumed|parallel|channels|attempts|renames|server)\b|receipt:/);
    setLanguage("en");
    expect(describeUpload({ ...result, rttMs: undefined })).toContain("  over 6 parallel channels");
  });
});
