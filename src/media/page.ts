/*
 * The page for the specialist: one XHTML document (no script) listing the patient, studies, series with a thumbnail
 * each, the reports, and the integrity status. Written as INDEX.HTM on the medium (IHE PDI web content) and as
 * index.html in a ready/ delivery; only the links differ.
 */
import { formatDicomDate } from "../dicom/summary.js";
import type { PersonName } from "../dicom/types.js";

/** One series as the page shows it. */
export interface PageSeries {
  number?: string;
  modality?: string;
  description?: string;
  images: number;
  /** Link to the thumbnail, relative to the page. */
  thumbnail?: { href: string; width: number; height: number };
  /** Why there is no thumbnail (pixels not decodable, ...). */
  noThumbnail?: string;
  /** Where the images are (relative link to the folder, e.g. DICOM/PAT00001/STU00001/SER00001). */
  folder?: string;
}

/** One study as the page shows it. */
export interface PageStudy {
  date?: string;
  time?: string;
  description?: string;
  accessionNumber?: string;
  modalities: string[];
  series: PageSeries[];
}

/** One patient (PHI: shown only on the medium and in the ready/ folder, never in logs). */
export interface PagePatient {
  name?: PersonName;
  id?: string;
  birthDate?: string;
  sex?: string;
  studies: PageStudy[];
}

/** A linked file that is not a DICOM image (a report). */
export interface PageDocument {
  href: string;
  /** The name the sender gave it (PHI possible). */
  title: string;
  bytes: number;
  note?: string;
}

/** Everything on the page. */
export interface PageModel {
  /** Heading, e.g. "Imaging for specialist review". */
  title: string;
  patients: PagePatient[];
  reports: PageDocument[];
  others: PageDocument[];
  /** Integrity lines (package SHA-256, manifest check). */
  integrity: string[];
  /** Remarks (reports-only delivery, transfer syntaxes outside the profile, ...). */
  notes: string[];
  /** "Made by scanbridge 0.1.0 on 2026-12-01 07:00 UTC". */
  madeBy: string;
}

/** Characters XML 1.0 forbids (C0 controls other than tab, LF, CR): dropped, or the page would not parse as XHTML. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g;

/** Escape text for XHTML (element content and attribute values). */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!).replace(CONTROL_CHARS, "");
}

/** Escape each segment of a relative link (names with spaces, #, ? or non-ASCII letters in a ready/ folder). */
export function hrefOf(relPath: string): string {
  return relPath.split("/").map(encodeURIComponent).join("/");
}

/** A person name for display: "Family Given" from "Family^Given", ideographic form after it when present. */
export function displayName(n: PersonName | undefined): string {
  if (!n) return "(no name in the images)";
  const fmt = (s: string | undefined) => (s ?? "").split("^").filter((x) => x.trim() !== "").join(" ").trim();
  const a = fmt(n.alphabetic);
  const i = fmt(n.ideographic);
  return [a, i].filter((x) => x !== "").join(" / ") || "(no name in the images)";
}

function formatTime(tm: string | undefined): string | undefined {
  const m = /^(\d{2})(\d{2})/.exec(tm ?? "");
  return m ? `${m[1]}:${m[2]}` : undefined;
}

function formatBytesShort(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

const STYLE = `
body { font-family: Arial, Helvetica, sans-serif; margin: 1.5em; color: #111; background: #fff; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #999; margin-top: 1.5em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.meta { color: #444; font-size: 0.9em; }
.patient dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; margin: 0.5em 0; }
.patient dt { font-weight: bold; }
.study { margin: 1em 0 1.5em 0; padding: 0.5em 1em; border: 1px solid #ccc; border-radius: 4px; }
.series-list { display: flex; flex-wrap: wrap; gap: 1em; list-style: none; padding: 0; }
.series { width: 200px; border: 1px solid #ddd; padding: 0.4em; background: #f7f7f7; }
.series img { display: block; background: #000; max-width: 192px; }
.no-thumb { width: 192px; height: 96px; display: flex; align-items: center; justify-content: center; text-align: center; background: #eee; color: #900; font-size: 0.85em; }
.series .meta { word-break: break-all; }
.integrity { font-family: monospace; font-size: 0.9em; word-break: break-all; }
.note { color: #7a4b00; }
`;

/** Render the page as XHTML 1.0 Strict (readable as HTML too; no script, no external resources). */
export function renderPage(m: PageModel): string {
  const e = escapeXml;
  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">');
  out.push('<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">');
  out.push("<head>");
  out.push('<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />');
  out.push(`<title>${e(m.title)}</title>`);
  out.push(`<style type="text/css">${STYLE}</style>`);
  out.push("</head>");
  out.push("<body>");
  out.push(`<h1>${e(m.title)}</h1>`);
  out.push(`<p class="meta">${e(m.madeBy)}</p>`);
  for (const note of m.notes) out.push(`<p class="note">${e(note)}</p>`);
  for (const p of m.patients) {
    out.push('<div class="patient">');
    out.push(`<h2>Patient: <span class="patient-name">${e(displayName(p.name))}</span></h2>`);
    out.push("<dl>");
    if (p.id) out.push(`<dt>Patient ID</dt><dd>${e(p.id)}</dd>`);
    if (p.birthDate) out.push(`<dt>Birth date</dt><dd>${e(formatDicomDate(p.birthDate) ?? "")}</dd>`);
    if (p.sex) out.push(`<dt>Sex</dt><dd>${e(p.sex)}</dd>`);
    out.push(`<dt>Studies</dt><dd>${p.studies.length}</dd>`);
    out.push("</dl>");
    for (const s of p.studies) {
      const images = s.series.reduce((a, x) => a + x.images, 0);
      out.push('<div class="study">');
      const when = [formatDicomDate(s.date) ?? "date unknown", formatTime(s.time)].filter(Boolean).join(" ");
      out.push(`<h3><span class="study-date">${e(when)}</span> · <span class="study-description">${e(s.description ?? "(no description)")}</span></h3>`);
      out.push(`<p class="meta"><span class="study-modalities">${e(s.modalities.join(", ") || "modality unknown")}</span> · ${s.series.length} series · ${images} images${s.accessionNumber ? ` · accession ${e(s.accessionNumber)}` : ""}</p>`);
      out.push('<ul class="series-list">');
      for (const se of s.series) {
        out.push('<li class="series">');
        if (se.thumbnail) out.push(`<img class="thumb" src="${e(se.thumbnail.href)}" width="${se.thumbnail.width}" height="${se.thumbnail.height}" alt="${e(`Series ${se.number ?? ""} preview`.replace(/\s+/g, " "))}" />`);
        else out.push(`<div class="no-thumb">${e(se.noThumbnail ?? "no preview")}</div>`);
        out.push(`<div><strong>Series ${e(se.number ?? "?")}</strong> ${e(se.modality ?? "")}</div>`);
        if (se.description) out.push(`<div class="series-description">${e(se.description)}</div>`);
        out.push(`<div class="series-images">${se.images} image${se.images === 1 ? "" : "s"}</div>`);
        if (se.folder) out.push(`<div class="meta">${e(se.folder)}</div>`);
        out.push("</li>");
      }
      out.push("</ul>");
      out.push("</div>");
    }
    out.push("</div>");
  }
  out.push("<h2>Reports</h2>");
  if (m.reports.length === 0) out.push("<p>No reports were sent with the images.</p>");
  else {
    out.push('<ul class="reports">');
    for (const r of m.reports) out.push(`<li class="report"><a href="${e(r.href)}">${e(r.title)}</a> (${formatBytesShort(r.bytes)})</li>`);
    out.push("</ul>");
  }
  if (m.others.length > 0) {
    out.push("<h2>Other files</h2>");
    out.push('<ul class="others">');
    for (const r of m.others) out.push(`<li class="other"><a href="${e(r.href)}">${e(r.title)}</a> (${formatBytesShort(r.bytes)})${r.note ? ` · ${e(r.note)}` : ""}</li>`);
    out.push("</ul>");
  }
  out.push("<h2>Integrity</h2>");
  out.push('<ul class="integrity">');
  for (const line of m.integrity) out.push(`<li>${e(line)}</li>`);
  out.push("</ul>");
  out.push("</body>");
  out.push("</html>");
  return out.join("\n") + "\n";
}
