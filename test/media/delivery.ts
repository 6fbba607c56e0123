/*
 * The delivery the media tests use: three patients, studies in six transfer syntaxes (RLE, JPEG lossless, JPEG-LS
 * and JPEG baseline encoded by dcmtk, JPEG 2000 by dcmjs-codecs), a series whose pixels cannot be decoded, a
 * sender's CD with a lower-case dicomdir and long lower-case names, PDF reports, and a truncated DICOM file.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildDicom, buildDicomdir, buildTruncatedDicom, TransferSyntax } from "../../fixtures/dicom-builder.js";
import { imageDicom, pdfReport, transcodeDicom, type ImageDicomOptions } from "../../fixtures/media-builder.js";

/** Transfer syntax UIDs used here. */
export const TS = {
  explicitLE: TransferSyntax.explicitLE,
  rle: "1.2.840.10008.1.2.5",
  jpegLossless: "1.2.840.10008.1.2.4.70",
  jpegBaseline: "1.2.840.10008.1.2.4.50",
  jpegLs: "1.2.840.10008.1.2.4.80",
  j2k: "1.2.840.10008.1.2.4.90",
} as const;

/** One file of the delivery, and for DICOM images what it is. */
export interface DeliveryFile {
  path: string;
  data: Buffer;
  kind?: "dicom" | "dicomdir" | "document" | "other";
  sopInstanceUid?: string;
  transferSyntax?: string;
  /** The series' pixels are meant to be undecodable. */
  undecodable?: boolean;
}

/** Compress an explicit-LE file with a dcmtk tool (dcmcrle, dcmcjpeg, dcmcjpls): an encoder independent of ours. */
function dcmtk(tool: string, args: string[], input: Buffer): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "scanbridge-dcmtk-"));
  try {
    writeFileSync(join(dir, "in.dcm"), input);
    execFileSync(tool, [...args, join(dir, "in.dcm"), join(dir, "out.dcm")], { stdio: "pipe" });
    return readFileSync(join(dir, "out.dcm"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function encode(buf: Buffer, ts: string): Promise<Buffer> {
  switch (ts) {
    case TS.explicitLE:
      return buf;
    case TS.rle:
      return dcmtk("dcmcrle", [], buf);
    case TS.jpegLossless:
      return dcmtk("dcmcjpeg", ["+e1"], buf);
    case TS.jpegBaseline:
      return dcmtk("dcmcjpeg", ["+eb", "+un"], buf);
    case TS.jpegLs:
      return dcmtk("dcmcjpls", ["+el"], buf);
    default:
      return transcodeDicom(buf, ts);
  }
}

interface SeriesSpec {
  ts: string;
  images: number;
  modality: string;
  description: string;
  undecodable?: boolean;
}

const UID = "1.2.826.0.1.3680043.9.7433.13";

/** Build the delivery's files (paths relative to the delivery root). */
export async function buildMediaDelivery(): Promise<DeliveryFile[]> {
  const files: DeliveryFile[] = [];
  const patients: Array<{ name: string; id: string; charset?: string; folder: string; studies: Array<{ date: string; time: string; description: string; series: SeriesSpec[] }> }> = [
    {
      name: "Álvarez Núñez^José",
      id: "PA-001",
      charset: "ISO_IR 192",
      folder: "scans/alvarez",
      studies: [
        { date: "20250301", time: "101500", description: "CT Thorax", series: [{ ts: TS.explicitLE, images: 3, modality: "CT", description: "Axial 5mm" }, { ts: TS.rle, images: 2, modality: "CT", description: "Coronal RLE" }] },
        {
          date: "20250402",
          time: "083000",
          description: "MR Knee",
          series: [
            { ts: TS.jpegLossless, images: 2, modality: "MR", description: "PD SAG lossless JPEG" },
            { ts: TS.jpegLs, images: 2, modality: "MR", description: "T1 COR JPEG-LS" },
            { ts: TS.jpegBaseline, images: 1, modality: "MR", description: "Scout JPEG baseline" },
          ],
        },
      ],
    },
    {
      name: "Smith^Anna",
      id: "PB-002",
      folder: "scans/smith",
      studies: [
        {
          date: "20250510",
          time: "140000",
          description: "CT Abdomen",
          series: [
            { ts: TS.j2k, images: 2, modality: "CT", description: "Portal venous J2K" },
            { ts: TS.jpegBaseline, images: 1, modality: "CT", description: "Broken pixels", undecodable: true },
          ],
        },
      ],
    },
  ];
  for (const [pi, p] of patients.entries()) {
    for (const [si, s] of p.studies.entries()) {
      const studyUid = `${UID}.${pi + 1}.${si + 1}`;
      for (const [sei, se] of s.series.entries()) {
        const seriesUid = `${studyUid}.${sei + 1}`;
        for (let i = 0; i < se.images; i++) {
          const sopInstanceUid = `${seriesUid}.${i + 1}`;
          const ident: ImageDicomOptions = {
            specificCharacterSet: p.charset,
            patientName: p.name,
            patientId: p.id,
            patientBirthDate: "19700101",
            patientSex: pi === 0 ? "M" : "F",
            studyInstanceUid: studyUid,
            seriesInstanceUid: seriesUid,
            sopInstanceUid,
            studyDate: s.date,
            studyDescription: s.description,
            seriesDescription: se.description,
            modality: se.modality,
            seriesNumber: sei + 1,
            instanceNumber: i + 1,
            seed: i + sei,
            extraElements: [
              { tag: 0x00080030, vr: "TM", value: s.time },
              { tag: 0x00200010, vr: "SH", value: `S${si + 1}` },
            ],
          };
          // Undecodable: JPEG baseline whose one fragment is a start and an end marker around zeros.
          const data = se.undecodable ? buildDicom({ ...ident, transferSyntax: TS.jpegBaseline, pixelDataBytes: 256 }) : await encode(imageDicom({ ...ident, rows: 128, cols: 128 }), se.ts);
          files.push({ path: `${p.folder}/study${si + 1}/series${sei + 1}/img${i + 1}.dcm`, data, kind: "dicom", sopInstanceUid, transferSyntax: se.ts, undecodable: se.undecodable });
        }
      }
    }
  }
  // A sender's CD copied as it was: lower-case dicomdir and long lower-case names.
  const cdEntries = [];
  for (let i = 0; i < 2; i++) {
    const sopInstanceUid = `${UID}.3.1.1.${i + 1}`;
    const rel = `dicom/yamada_tarou_long_folder/series_number_one/image_file_number_${i + 1}`;
    files.push({
      path: `sender cd/${rel}`,
      data: imageDicom({ rows: 128, cols: 128, specificCharacterSet: "ISO_IR 192", patientName: "Yamada^Tarou=山田^太郎", patientId: "PC-003", studyInstanceUid: `${UID}.3.1`, seriesInstanceUid: `${UID}.3.1.1`, sopInstanceUid, studyDate: "20240101", studyDescription: "Chest X-ray", modality: "CR", seriesNumber: 1, instanceNumber: i + 1, seed: 5 + i }),
      kind: "dicom",
      sopInstanceUid,
      transferSyntax: TS.explicitLE,
    });
    cdEntries.push({ path: rel, patientId: "PC-003", studyInstanceUid: `${UID}.3.1`, seriesInstanceUid: `${UID}.3.1.1`, sopInstanceUid, modality: "CR", instanceNumber: i + 1 });
  }
  files.push({ path: "sender cd/dicomdir", data: buildDicomdir(cdEntries), kind: "dicomdir" });
  files.push({ path: "reports/Radiology report CT thorax 2025-03-01.pdf", data: pdfReport("CT thorax report"), kind: "document" });
  files.push({ path: "reports/discharge letter (final).pdf", data: pdfReport("discharge letter"), kind: "document" });
  files.push({ path: "scans/broken.dcm", data: buildTruncatedDicom({ patientId: "X" }), kind: "dicom" });
  return files;
}
