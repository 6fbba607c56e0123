// Builds receipts like upload/send write them, in throw-away folders.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Receipt } from "../../src/transfer/receipt.js";
import { testdir } from "../helpers/cli.js";

export const PATIENT = "José Álvarez Núñez";
export const SHA = "3f2a9c1b0d4e5f60718293a4b5c6d7e8f9011223344556677889900aabbccdde";

/** A receipt for a synthetic package of PATIENT. */
export function makeReceipt(over: Partial<Receipt> = {}): Receipt {
  return {
    format: "scanbridge-receipt",
    formatVersion: 1,
    package: `${PATIENT}.zip`,
    destination: "sftp://jose@upload.example.org:22/incoming",
    remotePath: `/incoming/${PATIENT}.zip`,
    size: 1_234_567_890,
    sha256: SHA,
    verified: "sha256",
    attempts: 1,
    startedAt: "2026-11-23T10:00:00.000Z",
    finishedAt: "2026-11-23T10:05:00.000Z",
    summary: {
      files: 412,
      byKind: { dicom: 409, pdf: 2, image: 1 },
      studies: [
        { date: "20240131", description: "CT THORAX Álvarez follow-up", modalities: ["CT"], series: 3, images: 300 },
        { date: "2024-02-02", modalities: ["MR", "SR"], series: 2, images: 109 },
      ],
    },
    ...over,
  };
}

/** Write a receipt into a fresh folder; returns its path. */
export function writeReceipt(over: Partial<Receipt> = {}, dir = testdir({}, "sb-notify-")): string {
  const r = makeReceipt(over);
  const path = join(dir, r.package.replace(/\.zip$/, "") + ".receipt.json");
  writeFileSync(path, JSON.stringify(r, null, 2));
  return path;
}
