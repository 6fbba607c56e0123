import type { Transporter } from "nodemailer";
import { NotifyError, UsageError } from "../errors.js";
import { msg, type LocalText } from "../i18n/index.js";
import { VERSION } from "../version.js";

/** A parsed SMTP server URL (never holds a password). */
export interface SmtpServer {
  /** Implicit TLS from the first byte (smtps://); otherwise STARTTLS. */
  secure: boolean;
  host: string;
  port: number;
  user?: string;
}

/** Everything needed to talk to the SMTP server. The password comes from env/config, never argv. */
export interface SmtpSettings extends SmtpServer {
  password?: string;
  /** Allow plain text and unverified certificates (explicit --smtp-insecure only). */
  insecure: boolean;
  /** PEM of a private CA to trust. */
  ca?: string;
  /** Envelope and header sender. */
  from: string;
  /** Milliseconds; tests shorten them. */
  timeoutMs?: number;
}

/** One message to one recipient (header To may list every coordinator, the envelope only this one). */
export interface SmtpMessage {
  /** Envelope recipient(s): one coordinator for notifications, every address for an e-mailed package. */
  recipient: string | string[];
  to: string[];
  subject: string;
  text: string;
  html: string;
  messageId: string;
  /** The sender's own address, so a coordinator's reply reaches a person even when `from` is a no-reply account. */
  replyTo?: string;
  headers?: Record<string, string>;
  /** Files attached from memory (content already read and bounded by the caller; never a path: file access is off). */
  attachments?: Array<{ filename: string; content: Buffer; contentType: string }>;
}

/** What the server said when it accepted a message. */
export interface SmtpAccepted {
  response: string;
  messageId: string;
}

/** A delivery failure, classified: retryable (connection, 4xx) or not (5xx, auth, TLS policy). Exit 7 if it ever escapes. */
export class SmtpDeliveryError extends NotifyError {
  constructor(
    message: string | LocalText,
    retryable: boolean,
    hint?: string | LocalText,
    readonly responseCode?: number,
  ) {
    super("SMTP_DELIVERY_FAILED", message, { retryable, hint });
  }
}

/** Parse smtp://[user@]host[:port] or smtps://...; a password in the URL is refused (it would sit in argv or shell history). */
export function parseSmtpUrl(raw: string, source = "smtp"): SmtpServer {
  const bad = (why: LocalText, hint?: LocalText) => new UsageError("BAD_OPTION", msg("option.invalid", { key: "smtp", source, why }), { hint: hint ?? msg("smtp.url.hint") });
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw bad(msg("option.notUrl", { value: raw.replace(/:[^:@/]*@/, ":***@") }));
  }
  if (u.protocol !== "smtp:" && u.protocol !== "smtps:") throw bad(msg("smtp.scheme", { scheme: `${u.protocol}//` }));
  if (u.password) {
    throw bad(msg("smtp.password"), msg("smtp.password.hint"));
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) throw bad(msg("smtp.noHost"));
  if (u.pathname && u.pathname !== "/" && u.pathname !== "") throw bad(msg("smtp.path"));
  const secure = u.protocol === "smtps:";
  const port = u.port ? Number(u.port) : secure ? 465 : 587;
  const server: SmtpServer = { secure, host, port };
  if (u.username) server.user = decodeURIComponent(u.username);
  return server;
}

/** Display form of an SMTP server: scheme, user, host and port, never a password. */
export function describeSmtp(s: SmtpServer): string {
  return `${s.secure ? "smtps" : "smtp"}://${s.user ? `${encodeURIComponent(s.user)}@` : ""}${s.host.includes(":") ? `[${s.host}]` : s.host}:${s.port}`;
}

function transportOptions(s: SmtpSettings): Record<string, unknown> {
  const timeout = s.timeoutMs ?? 30_000;
  return {
    host: s.host,
    port: s.port,
    secure: s.secure,
    // STARTTLS is mandatory unless the user explicitly accepted a plain connection.
    requireTLS: !s.secure && !s.insecure,
    ignoreTLS: false,
    auth: s.user ? { user: s.user, pass: s.password ?? "" } : undefined,
    tls: {
      rejectUnauthorized: !s.insecure,
      minVersion: "TLSv1.2",
      ...(s.ca ? { ca: s.ca } : {}),
    },
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout * 2,
    // Message content never pulls in local files or URLs.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
    debug: false,
  };
}

/** Classify a nodemailer error: what happened, whether retrying may help, and what the user can do. */
export function classifySmtpError(err: unknown, s: SmtpServer): SmtpDeliveryError {
  const e = err as { code?: string; responseCode?: number; message?: string; command?: string };
  const reason = (e?.message ?? String(err)).replace(/\s+/g, " ").trim();
  const where = describeSmtp(s);
  const code = e?.responseCode;
  if (e?.code === "EAUTH") {
    return new SmtpDeliveryError(msg("smtp.authFailed", { where, reason }), false, msg("smtp.authFailed.hint"), code);
  }
  if (/STARTTLS/i.test(reason) || (e?.code === "ETLS" && !s.secure)) {
    return new SmtpDeliveryError(msg("smtp.noStarttls", { where, reason }), false, msg("smtp.noStarttls.hint"), code);
  }
  if (e?.code === "ETLS" || /certificate|self[- ]signed|SSL|TLS|wrong version/i.test(reason)) {
    return new SmtpDeliveryError(msg("smtp.tls", { where, reason }), false, msg("smtp.tls.hint"), code);
  }
  if (typeof code === "number") {
    if (code >= 500) return new SmtpDeliveryError(msg("smtp.refused", { where, code, reason }), false, msg("smtp.refused.hint"), code);
    if (code >= 400) return new SmtpDeliveryError(msg("smtp.deferred", { where, code, reason }), true, undefined, code);
  }
  // Connection refused, DNS, timeouts, dropped sockets: worth another try later.
  return new SmtpDeliveryError(msg("smtp.unreachable", { where, reason }), true, msg("smtp.unreachable.hint"), code);
}

/** A connection to an SMTP server that sends one message at a time. */
export interface SmtpSender {
  /** Connect, negotiate TLS and authenticate without sending (for `init`). */
  verify(): Promise<void>;
  send(m: SmtpMessage): Promise<SmtpAccepted>;
  close(): void;
}

/** Create an SMTP sender with nodemailer: TLS required by default, certificates verified. */
export function createSmtpSender(s: SmtpSettings): SmtpSender {
  // nodemailer (about 40 modules, ~0.1 s of CPU) is loaded on first use, not by every command that imports this
  // file: `watch --once` with nothing to notify never needs it.
  let made: Promise<Transporter> | undefined;
  const transport = () => (made ??= import("nodemailer").then((m) => m.default.createTransport(transportOptions(s) as never) as Transporter));
  return {
    async verify() {
      try {
        const transporter = await transport();
        await transporter.verify();
      } catch (err) {
        throw classifySmtpError(err, s);
      }
    },
    async send(m) {
      let info: { accepted?: unknown[]; rejected?: unknown[]; response?: string; messageId?: string };
      try {
        const transporter = await transport();
        info = await transporter.sendMail({
          from: s.from,
          to: m.to,
          envelope: { from: s.from, to: Array.isArray(m.recipient) ? m.recipient : [m.recipient] },
          subject: m.subject,
          text: m.text,
          html: m.html,
          messageId: m.messageId,
          ...(m.replyTo && m.replyTo.toLowerCase() !== s.from.toLowerCase() ? { replyTo: m.replyTo } : {}),
          headers: { "X-Mailer": `scanbridge ${VERSION}`, ...m.headers },
          ...(m.attachments ? { attachments: m.attachments } : {}),
        });
      } catch (err) {
        throw classifySmtpError(err, s);
      }
      const rejected = (info.rejected ?? []).map(String);
      if (rejected.length > 0) throw new SmtpDeliveryError(msg("smtp.rejected", { where: describeSmtp(s), addresses: rejected.join(", ") }), false, msg("smtp.rejected.hint"));
      return { response: String(info.response ?? ""), messageId: String(info.messageId ?? m.messageId) };
    },
    close() {
      void made?.then((t) => t.close(), () => {});
    },
  };
}
