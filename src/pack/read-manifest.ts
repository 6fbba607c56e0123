import yauzl from "yauzl";
import { InputError } from "../errors.js";
import { msg, type LocalText } from "../i18n/index.js";
import { MANIFEST_NAME, type Manifest } from "./manifest.js";

/** Largest manifest.json read back (a 100,000-file package has a manifest of about 25 MB). */
const MAX_MANIFEST_BYTES = 64 << 20;

/** Read `<root>/manifest.json` from a package zip without reading the rest (central directory + one entry). */
export function readManifestFromZip(zipPath: string): Promise<Manifest> {
  return new Promise((resolve, reject) => {
    const bad = (why: LocalText | string) => new InputError("PACKAGE_UNREADABLE", msg("pack.unreadableBack", { why }), { hint: msg("pack.unreadableBack.hint"), privateLines: [zipPath] });
    yauzl.open(zipPath, { lazyEntries: true, autoClose: true, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) return reject(bad(err?.message ?? msg("archive.notZip")));
      let found = false;
      zip.on("error", (e: Error) => reject(bad(e.message)));
      zip.on("end", () => {
        if (!found) reject(bad(msg("manifest.missing")));
      });
      zip.on("entry", (entry: yauzl.Entry) => {
        const parts = entry.fileName.split("/");
        if (parts.length !== 2 || parts[1] !== MANIFEST_NAME) return zip.readEntry();
        found = true;
        if (entry.uncompressedSize > MAX_MANIFEST_BYTES) {
          zip.close();
          return reject(bad(msg("manifest.tooLarge")));
        }
        zip.openReadStream(entry, (e2, stream) => {
          if (e2 || !stream) return reject(bad(e2?.message ?? msg("manifest.unreadable")));
          const chunks: Buffer[] = [];
          stream.on("data", (c: Buffer) => chunks.push(c));
          stream.on("error", (e: Error) => reject(bad(e.message)));
          stream.on("end", () => {
            zip.close();
            try {
              const m = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Manifest;
              if (m.format !== "scanbridge-package") return reject(bad(msg("manifest.notScanbridge")));
              resolve(m);
            } catch {
              reject(bad(msg("manifest.badJson")));
            }
          });
        });
      });
      zip.readEntry();
    });
  });
}

/** The receipt summary (counts by kind, studies) taken from a manifest: no names, no free-text beyond study descriptions. */
export function summaryFromManifest(m: Manifest): { files: number; byKind: Record<string, number>; studies?: Array<{ date?: string; description?: string; modalities: string[]; series: number; images: number }> } {
  return {
    files: m.totals.files,
    byKind: { ...(m.totals.byKind as Record<string, number>) },
    ...(m.dicom ? { studies: m.dicom.studies.map((s) => ({ date: s.date, description: s.description, modalities: s.modalities, series: s.series, images: s.images })) } : {}),
  };
}
