import { createHash, randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { basename } from "node:path";
import { InputError, NetworkError, SizeLimitError, throwIfAborted } from "../errors.js";
import { msg } from "../i18n/index.js";
import { escapeHtml, packageIdOf, type SenderContact } from "../notify/message.js";
import { createSmtpSender, describeSmtp, SmtpDeliveryError, type SmtpSender, type SmtpSettings } from "../notify/smtp.js";
import type { Emit } from "../ui/events.js";
import { formatBytes } from "../ui/format.js";
import { readFully } from "../util/read-fully.js";

/** A written package, as pack reports it. */
export interface EmailablePackage {
  /** Absolute path of the zip (its name carries the patient's name: it is the attachment's name). */
  path: string;
  sha256: string;
  size: number;
  files?: number;
}

/** How to e-mail a package. */
export interface EmailPackageOptions {
  recipients: string[];
  smtp: SmtpSettings;
  /** Largest package sent by e-mail (--email-limit); larger ones are refused with exit 4 before connecting. */
  limit: number;
  /** Put the patient's name in the subject (off by default: minimal PHI). */
  includePatientName: boolean;
  sender: SenderContact;
  createSender?: (s: SmtpSettings) => SmtpSender;
  signal?: AbortSignal;
  emit?: Emit;
}

/** What was sent. */
export interface EmailResult {
  recipients: string[];
  messageId: string;
  response: string;
  packageId: string;
  size: number;
  sha256: string;
  /** The SMTP server, without password. */
  server: string;
}

/** Refuse a package over the e-mail limit (exit 4) before anything is read or sent. */
export function checkEmailLimit(size: number, limit: number): void {
  if (size <= limit) return;
  throw new SizeLimitError("EMAIL_TOO_LARGE", msg("email.tooLarge", { size: formatBytes(size), limit: formatBytes(limit) }), {
    hint: msg("email.tooLarge.hint"),
    details: { size, limit },
  });
}

/** Read the whole zip (at most `limit` bytes, so memory is bounded) and check it is still the package pack hashed. */
async function readPackage(pkg: EmailablePackage, limit: number): Promise<Buffer> {
  const fh = await open(pkg.path, "r");
  try {
    const size = (await fh.stat()).size;
    checkEmailLimit(size, limit);
    const buf = await readFully(fh, Buffer.alloc(size), 0);
    const sha256 = createHash("sha256").update(buf).digest("hex");
    if (buf.length !== pkg.size || sha256 !== pkg.sha256) {
      throw new InputError("PACKAGE_CHANGED", msg("email.packageChanged"), { hint: msg("email.packageChanged.hint") });
    }
    return buf;
  } finally {
    await fh.close();
  }
}

/** Subject, text and HTML of the message carrying the package: no patient name unless asked, the SHA-256 in the body. */
export function renderPackageEmail(pkg: EmailablePackage, opts: Pick<EmailPackageOptions, "includePatientName" | "sender">): { subject: string; text: string; html: string } {
  const id = packageIdOf(pkg.sha256);
  const file = basename(pkg.path);
  const counts = [pkg.files !== undefined ? `${pkg.files} files` : undefined, formatBytes(pkg.size)].filter(Boolean).join(", ");
  const subject = `[scanbridge] Imaging package ${id} attached (${counts})${opts.includePatientName ? ` - ${file.replace(/\.zip$/i, "")}` : ""}`;
  const rows: Array<[string, string]> = [
    ["Package ID", id],
    ["SHA-256", pkg.sha256],
    ["Size", `${formatBytes(pkg.size)} (${pkg.size} bytes)`],
  ];
  if (pkg.files !== undefined) rows.push(["Files", String(pkg.files)]);
  const s = opts.sender;
  if (s.name) rows.push([s.role === "clinic" ? "Clinic" : "Sent by", s.name]);
  if (s.email) rows.push(["E-mail", s.email]);
  if (s.phone) rows.push(["Phone", s.phone]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const intro = "An imaging package is attached to this message, sent with scanbridge.";
  const check = "Check it after saving: scanbridge verify <file>.zip, or compare sha256sum <file>.zip with the SHA-256 above.";
  const text = [intro, "", ...rows.map(([k, v]) => `${(k + ":").padEnd(width)}${v}`), "", check, ...(opts.includePatientName ? [] : ["The patient's name is left out of this message on purpose; it is inside the package."]), ""].join("\n");
  const tr = ([k, v]: [string, string]) => `<tr><th align="left" style="padding:2px 12px 2px 0">${escapeHtml(k)}</th><td style="font-family:monospace">${escapeHtml(v)}</td></tr>`;
  const html = ["<!doctype html>", '<html><head><meta charset="utf-8"></head><body style="font-family:sans-serif">', `<p>${escapeHtml(intro)}</p>`, `<table>${rows.map(tr).join("")}</table>`, `<p>${escapeHtml(check)}</p>`, "</body></html>", ""].join("\n");
  return { subject, text, html };
}

/**
 * E-mail a package as one message with the zip attached, through the configured SMTP server (TLS as for
 * notifications). Over the limit: exit 4, nothing sent. A failed delivery is a network error (exit 5).
 */
export async function emailPackage(pkg: EmailablePackage, opts: EmailPackageOptions): Promise<EmailResult> {
  checkEmailLimit(pkg.size, opts.limit);
  const content = await readPackage(pkg, opts.limit);
  throwIfAborted(opts.signal);
  const { subject, text, html } = renderPackageEmail(pkg, opts);
  const messageId = `<${packageIdOf(pkg.sha256)}.${randomBytes(6).toString("hex")}@scanbridge>`;
  const server = describeSmtp(opts.smtp);
  opts.emit?.({ type: "step", id: "email", label: msg("step.email", { n: opts.recipients.length, server }) });
  const sender = (opts.createSender ?? createSmtpSender)(opts.smtp);
  try {
    const accepted = await sender.send({
      recipient: opts.recipients,
      to: opts.recipients,
      subject,
      text,
      html,
      messageId,
      ...(opts.sender.email ? { replyTo: opts.sender.email } : {}),
      attachments: [{ filename: basename(pkg.path), content, contentType: "application/zip" }],
    });
    opts.emit?.({ type: "step-done", id: "email", label: msg("step.email.done") });
    return { recipients: opts.recipients, messageId: accepted.messageId, response: accepted.response, packageId: packageIdOf(pkg.sha256), size: pkg.size, sha256: pkg.sha256, server };
  } catch (err) {
    opts.emit?.({ type: "step-done", id: "email", label: msg("step.email.failed"), ok: false });
    if (err instanceof SmtpDeliveryError) throw new NetworkError("EMAIL_SEND_FAILED", err.text, { hint: err.hintText, retryable: err.retryable, cause: err });
    throw err;
  } finally {
    sender.close();
  }
}
