import type { Receipt } from "../transfer/receipt.js";
import { formatBytes } from "../ui/format.js";

/** Who is sending, as configured: shown to coordinators so they can reply. */
export interface SenderContact {
  role?: "patient" | "clinic";
  name?: string;
  email?: string;
  phone?: string;
}

/** Options that change what a notification says. */
export interface MessageOptions {
  /** Put the patient's name and the package file name in the message (off by default: minimal PHI). */
  includePatientName: boolean;
  sender: SenderContact;
}

/** The structured facts of one notification; the e-mail and the webhook body are both built from it. */
export interface NotificationFacts {
  event: "package.uploaded" | "package.ready" | "package.quarantined" | "package.forwarded";
  /** For package.forwarded: instances sent to the PACS, confirmed there by QIDO-RS, and how long it took. */
  forward?: { instances: number; confirmed: number; durationMs: number; pacs: string };
  /** For package.quarantined: why (problem codes, no names). */
  problems?: string[];
  /** Problem codes with their counts, and what staff can do. */
  problemCounts?: Record<string, number>;
  hint?: string;
  /** Packages taken by watch: unsealed (hand-made), name code page, what was left out, review flags. */
  intake?: Receipt["intake"];
  /** For package.ready: warnings staff must see (sender overrides, unchecked files); no names. */
  warnings?: string[];
  /** First 12 hex digits of the package SHA-256. */
  packageId: string;
  sha256: string;
  size: number;
  files?: number;
  byKind?: Record<string, number>;
  studies?: Array<{ date?: string; modalities: string[]; series: number; images: number }>;
  /** Destination folder without user name or the patient-named file. */
  destinationFolder: string;
  verified: "size" | "sha256";
  uploadedAt: string;
  sender: SenderContact;
  /** Only with includePatientName. */
  patientName?: string;
  /** Only with includePatientName. */
  packageFile?: string;
}

/** A rendered notification: what is stored in the outbox and sent. */
export interface RenderedMessage {
  subject: string;
  text: string;
  html: string;
  facts: NotificationFacts;
}

/** Package ID: the first 12 hex digits of the package's SHA-256. */
export function packageIdOf(sha256: string): string {
  return sha256.toLowerCase().slice(0, 12);
}

/** The destination folder of an upload, without credentials, user name or the (patient-named) file. */
export function destinationFolderOf(receipt: Pick<Receipt, "destination" | "remotePath" | "package">): string {
  const folderOfRemote = (() => {
    const p = receipt.remotePath.replace(/\\/g, "/");
    const i = p.lastIndexOf("/");
    return i > 0 ? p.slice(0, i) : i === 0 ? "/" : "";
  })();
  try {
    const u = new URL(receipt.destination);
    u.username = "";
    u.password = "";
    u.search = "";
    u.hash = "";
    if (folderOfRemote) u.pathname = folderOfRemote;
    return decodeURI(u.toString()).replace(/\/$/, "") || u.toString();
  } catch {
    // Not a URL (a plain local path): keep only the folder, never the file name.
    return folderOfRemote || receipt.destination.replace(/^[^@/]*@/, "");
  }
}

/** Patient name as the package names it: the file name without ".zip". */
export function patientNameOf(receipt: Pick<Receipt, "package">): string {
  const base = receipt.package.replace(/\\/g, "/").split("/").pop() ?? receipt.package;
  return base.replace(/\.zip$/i, "");
}

/** Extract the facts of a notification from a receipt, leaving out PHI unless asked. */
export function factsFromReceipt(receipt: Receipt, opts: MessageOptions): NotificationFacts {
  const facts: NotificationFacts = {
    event: receipt.event === "ready" ? "package.ready" : receipt.event === "quarantined" ? "package.quarantined" : receipt.event === "forwarded" ? "package.forwarded" : "package.uploaded",
    ...(receipt.problems?.length ? { problems: [...receipt.problems] } : {}),
    ...(receipt.problemCounts ? { problemCounts: { ...receipt.problemCounts } } : {}),
    ...(receipt.hint ? { hint: receipt.hint } : {}),
    ...(receipt.intake ? { intake: { ...receipt.intake, ...(opts.includePatientName ? {} : { readyRel: undefined }) } } : {}),
    ...(receipt.warnings?.length ? { warnings: [...receipt.warnings] } : {}),
    packageId: packageIdOf(receipt.sha256),
    sha256: receipt.sha256.toLowerCase(),
    size: receipt.size,
    destinationFolder: receipt.event === "forwarded" && receipt.forward ? receipt.forward.pacs : destinationFolderOf(receipt),
    verified: receipt.verified,
    uploadedAt: receipt.finishedAt,
    sender: pickSender(opts.sender),
  };
  if (receipt.event === "forwarded" && receipt.forward) {
    const f = receipt.forward;
    facts.forward = { instances: f.instances, confirmed: f.confirmed, durationMs: f.durationMs, pacs: f.pacs };
  }
  if (receipt.summary) {
    facts.files = receipt.summary.files;
    facts.byKind = { ...receipt.summary.byKind };
    // Study descriptions are free text typed at the scanner and may hold clinical detail: left out.
    if (receipt.summary.studies) {
      facts.studies = receipt.summary.studies.map((s) => ({
        ...(s.date ? { date: s.date } : {}),
        modalities: [...s.modalities],
        series: s.series,
        images: s.images,
      }));
    }
  }
  if (opts.includePatientName) {
    facts.patientName = patientNameOf(receipt);
    facts.packageFile = receipt.package.replace(/\\/g, "/").split("/").pop();
  }
  return facts;
}

function pickSender(s: SenderContact): SenderContact {
  const out: SenderContact = {};
  if (s.role) out.role = s.role;
  if (s.name) out.name = s.name;
  if (s.email) out.email = s.email;
  if (s.phone) out.phone = s.phone;
  return out;
}

/** "20240131" or "2024-01-31" -> "2024-01-31"; anything else unchanged. */
function formatStudyDate(d: string | undefined): string {
  if (!d) return "date unknown";
  const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(d.trim());
  return m ? `${m[1]}-${m[2]}-${m[3]}` : d;
}

function countsLine(byKind: Record<string, number> | undefined): string | undefined {
  if (!byKind) return undefined;
  const parts = Object.entries(byKind)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${n} ${k}`);
  return parts.length ? parts.join(", ") : undefined;
}

/** The subject line: searchable by "[scanbridge]" and the package ID. */
export function subjectOf(facts: NotificationFacts): string {
  const bits = [facts.files !== undefined ? `${facts.files} files` : undefined, formatBytes(facts.size)].filter(Boolean).join(", ");
  const who = facts.patientName ? ` - ${facts.patientName}` : "";
  if (facts.event === "package.ready") return `[scanbridge] Imaging package ${facts.packageId} ready for review (${bits})${facts.warnings?.length ? ` - ${facts.warnings.length} WARNING(S)` : ""}${who}`;
  if (facts.event === "package.forwarded") return `[scanbridge] Imaging package ${facts.packageId} delivered to the PACS (${facts.forward?.instances ?? 0} instances)${who}`;
  if (facts.event === "package.quarantined") return `[scanbridge] Imaging package ${facts.packageId} QUARANTINED (${(facts.problems ?? []).slice(0, 3).join(", ") || "failed checks"})${who}`;
  return `[scanbridge] New imaging package ${facts.packageId} (${bits})${who}`;
}

/** Label/value rows shared by the text and HTML parts. */
function rowsOf(facts: NotificationFacts): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  if (facts.patientName) rows.push(["Patient", facts.patientName]);
  if (facts.packageFile) rows.push(["Package file", facts.packageFile]);
  rows.push(["Package ID", facts.packageId]);
  rows.push(["SHA-256", facts.sha256]);
  if (facts.event === "package.forwarded") {
    const f = facts.forward ?? { instances: 0, confirmed: 0, durationMs: 0, pacs: facts.destinationFolder };
    rows.push(["Instances sent", String(f.instances)]);
    rows.push(["Confirmed by the PACS", `${f.confirmed} of ${f.instances} (QIDO-RS)`]);
    rows.push(["Duration", `${(f.durationMs / 1000).toFixed(1)} s`]);
    rows.push(["PACS", f.pacs]);
    rows.push(["Delivered at", facts.uploadedAt]);
    return rows;
  }
  rows.push(["Size", `${formatBytes(facts.size)} (${facts.size} bytes)`]);
  if (facts.files !== undefined) rows.push(["Files", String(facts.files)]);
  const counts = countsLine(facts.byKind);
  if (counts) rows.push(["By kind", counts]);
  for (const [i, s] of (facts.studies ?? []).entries()) {
    rows.push([
      `Study ${i + 1}`,
      `${formatStudyDate(s.date)}, ${s.modalities.length ? s.modalities.join("/") : "modality unknown"}, ${s.series} series, ${s.images} images`,
    ]);
  }
  if (facts.problemCounts) rows.push(["Problems", Object.entries(facts.problemCounts).map(([c, n]) => (n > 1 ? `${c} ×${n}` : c)).join(", ")]);
  else if (facts.problems?.length) rows.push(["Problems", facts.problems.join(", ")]);
  if (facts.hint) rows.push(["What to do", facts.hint]);
  const i = facts.intake;
  if (i?.needsReview?.length) rows.push(["NEEDS REVIEW", i.needsReview.map((r) => (r === "multiple-patients" ? "more than one patient in the DICOM files" : r === "name-mismatch" ? "folder/upload name does not match the DICOM patient" : r)).join("; ")]);
  if (i?.unsealed) rows.push(["Package", "hand-made (unsealed): scanbridge wrote its own manifest at intake"]);
  if (i?.nameEncoding) rows.push(["File names", `${i.nameEncoding.legacyNames} name(s) without the UTF-8 flag, read as ${i.nameEncoding.encoding} (${i.nameEncoding.evidence})`]);
  if (i?.leftOut && Object.keys(i.leftOut).length) rows.push(["Left out", Object.entries(i.leftOut).map(([r, n]) => `${n} ${r}`).join(", ")]);
  if (i?.readyRel) rows.push(["Ready folder", i.readyRel]);
  for (const w of facts.warnings ?? []) rows.push(["WARNING", w]);
  rows.push(["Folder", facts.destinationFolder]);
  if (facts.event === "package.uploaded") {
    rows.push(["Checked after upload", facts.verified === "sha256" ? "SHA-256 of the remote copy" : "size of the remote copy"]);
    rows.push(["Uploaded at", facts.uploadedAt]);
  } else {
    rows.push([facts.event === "package.ready" ? "Verified and filed at" : "Quarantined at", facts.uploadedAt]);
  }
  return rows;
}

function senderRows(s: SenderContact): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  if (s.name) rows.push([s.role === "clinic" ? "Clinic" : s.role === "patient" ? "Patient / sender" : "Name", s.name]);
  if (s.email) rows.push(["E-mail", s.email]);
  if (s.phone) rows.push(["Phone", s.phone]);
  return rows;
}

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function introOf(facts: NotificationFacts): string {
  if (facts.event === "package.ready") return "An incoming imaging package passed every check and was extracted for the specialist.";
  if (facts.event === "package.forwarded") return "An imaging package was sent to the PACS over DICOMweb and every instance was confirmed there.";
  if (facts.event === "package.quarantined") return "An incoming imaging package FAILED its checks and was moved to quarantine (see the reason file beside it).";
  return "A new imaging package was uploaded for you with scanbridge.";
}

/** Render the subject, plain-text and HTML parts of a notification. */
export function renderMessage(facts: NotificationFacts): RenderedMessage {
  const rows = rowsOf(facts);
  const sender = senderRows(facts.sender);
  const width = Math.max(...[...rows, ...sender].map(([k]) => k.length)) + 2;
  const line = ([k, v]: [string, string]) => `${(k + ":").padEnd(width)}${v}`;
  const howToFind = facts.packageFile
    ? "Find the package in the folder below by its file name; check it against the SHA-256."
    : `The package file in the folder below is named after the patient. Find it by its checksum: its .zip.sha256 file holds ${facts.packageId}..., or run sha256sum on the .zip files.`;
  const intro = introOf(facts);
  const text = [
    intro,
    "",
    ...rows.map(line),
    "",
    ...(facts.event === "package.uploaded" ? [howToFind] : []),
    ...(sender.length ? ["", "Sent by:", ...sender.map(line)] : []),
    "",
    ...(facts.event === "package.uploaded" ? ["Verify the package after downloading: scanbridge verify <file>.zip"] : []),
    "This message was sent automatically; the patient's name is left out on purpose unless the sender chose to include it.",
    "",
  ].join("\n");
  const tr = ([k, v]: [string, string]) =>
    `<tr><th align="left" style="padding:2px 12px 2px 0;vertical-align:top">${escapeHtml(k)}</th><td style="padding:2px 0;font-family:monospace">${escapeHtml(v)}</td></tr>`;
  const html = [
    "<!doctype html>",
    '<html><head><meta charset="utf-8"><title>' + escapeHtml(subjectOf(facts)) + "</title></head>",
    '<body style="font-family:sans-serif">',
    `<p>${escapeHtml(intro)}</p>`,
    `<table>${rows.map(tr).join("")}</table>`,
    ...(facts.event === "package.uploaded" ? [`<p>${escapeHtml(howToFind)}</p>`] : []),
    ...(sender.length ? ["<p><strong>Sent by</strong></p>", `<table>${sender.map(tr).join("")}</table>`] : []),
    ...(facts.event === "package.uploaded" ? ["<p>Verify the package after downloading: <code>scanbridge verify &lt;file&gt;.zip</code></p>"] : []),
    "</body></html>",
    "",
  ].join("\n");
  return { subject: subjectOf(facts), text, html, facts };
}
