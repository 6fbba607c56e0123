import type { OptionDef, OptionsOf } from "../config/options.js";

/** Options of every command that notifies coordinators (notify, send, watch, init): who, how, what. */
export const notifyOptions = [
  { key: "email", flags: "--email <addr,...>", description: "coordinator e-mail addresses, comma-separated", type: "list" },
  { key: "smtp", flags: "--smtp <url>", description: "SMTP server: smtp://[user@]host[:port] (STARTTLS required, port 587) or smtps://[user@]host[:port] (TLS, port 465)", type: "string" },
  { key: "smtpInsecure", flags: "--smtp-insecure", description: "allow SMTP without TLS and with unverified certificates (not recommended)", type: "boolean", default: false },
  { key: "smtpCa", flags: "--smtp-ca <file>", description: "PEM file of a private certificate authority to trust for the SMTP server", type: "string" },
  { key: "from", flags: "--from <addr>", description: "sender address of notification e-mails (default: senderEmail)", type: "string" },
  { key: "webhook", flags: "--webhook <url>", description: "webhook URL to POST a signed JSON notification to (repeatable)", type: "list", repeatable: true },
  { key: "webhookInsecure", flags: "--webhook-insecure", description: "allow plain http:// webhooks to hosts other than this machine (not recommended)", type: "boolean", default: false },
  { key: "webhookCa", flags: "--webhook-ca <file>", description: "PEM file of a private certificate authority to trust for https:// webhooks", type: "string" },
  { key: "includePatientName", flags: "--include-patient-name", description: "put the patient's name and package file name in notifications (off: minimal PHI)", type: "boolean", default: false },
  { key: "senderRole", flags: "--sender-role <role>", description: "who is sending: patient or clinic", type: "string", choices: ["patient", "clinic"] },
  { key: "senderName", flags: "--sender-name <name>", description: "sender's name (patient or clinic), shown to coordinators", type: "string" },
  { key: "senderEmail", flags: "--sender-email <addr>", description: "sender's contact e-mail, shown to coordinators", type: "string" },
  { key: "senderPhone", flags: "--sender-phone <phone>", description: "sender's contact phone, shown to coordinators", type: "string" },
  { key: "smtpPassword", description: "SMTP password (env SCANBRIDGE_SMTP_PASSWORD or config file only)", type: "string", secret: true, env: "SCANBRIDGE_SMTP_PASSWORD" },
  { key: "webhookSecret", description: "HMAC-SHA256 key signing webhook requests (env SCANBRIDGE_WEBHOOK_SECRET or config file only)", type: "string", secret: true, env: "SCANBRIDGE_WEBHOOK_SECRET" },
] as const satisfies readonly OptionDef[];

/** Resolved notification settings, typed from the table (every key optional: tests and callers give a subset). */
export type NotifySettings = Partial<OptionsOf<typeof notifyOptions>>;
