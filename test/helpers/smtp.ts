// A real SMTP server (smtp-server) on 127.0.0.1 for tests: STARTTLS or implicit TLS with a throw-away
// self-signed certificate made by openssl, optional AUTH, every accepted message collected and decoded.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { testdir } from "./cli.js";

/** A throw-away certificate for 127.0.0.1/localhost; `caFile` is the PEM to trust (self-signed: the cert itself). */
export interface TestCert {
  key: string;
  cert: string;
  caFile: string;
  dir: string;
}

/** Make a self-signed certificate for localhost and 127.0.0.1 with openssl (valid one day); removed after the test file. */
export function makeTestCert(): TestCert {
  const dir = testdir({}, "sb-cert-");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ], { stdio: "ignore" });
  return { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8"), caFile: join(dir, "cert.pem"), dir };
}

/** One message the server accepted. */
export interface ReceivedMail {
  envelopeFrom: string;
  envelopeTo: string[];
  raw: string;
  headers: Record<string, string>;
  subject: string;
  text: string;
  html: string;
  /** Whether the session was encrypted when the message was sent. */
  secure: boolean;
  user?: string;
}

/** Options for startSmtpServer. */
export interface SmtpServerOptions {
  /** "starttls" (default): plain port offering STARTTLS; "tls": implicit TLS; "plain": no TLS offered at all. */
  mode?: "starttls" | "tls" | "plain";
  /** Require AUTH with these credentials. */
  auth?: { user: string; pass: string };
  cert?: TestCert;
  /** Fixed port (to restart a server on the same port). */
  port?: number;
}

/** A running test SMTP server. */
export interface TestSmtpServer {
  host: string;
  port: number;
  cert: TestCert;
  messages: ReceivedMail[];
  /** smtp://[user@]127.0.0.1:port or smtps://... */
  url: string;
  stop(): Promise<void>;
}

function decodeQP(s: string): Buffer {
  const bytes: number[] = [];
  const t = s.replace(/=\r?\n/g, "");
  for (let i = 0; i < t.length; i++) {
    if (t[i] === "=" && /^[0-9A-Fa-f]{2}$/.test(t.slice(i + 1, i + 3))) {
      bytes.push(parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(t[i]!, "utf8"));
  }
  return Buffer.from(bytes);
}

function decodeWords(s: string): string {
  return s.replace(/\?=\s+=\?/g, "?==?").replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_, _cs, enc: string, data: string) =>
    enc.toUpperCase() === "B" ? Buffer.from(data, "base64").toString("utf8") : decodeQP(data.replace(/_/g, " ")).toString("utf8"),
  );
}

function parseHeaders(block: string): Record<string, string> {
  const h: Record<string, string> = {};
  for (const line of block.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0) h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return h;
}

function splitPart(part: string): { headers: Record<string, string>; body: string } {
  const m = /\r?\n\r?\n/.exec(part);
  if (!m) return { headers: parseHeaders(part), body: "" };
  return { headers: parseHeaders(part.slice(0, m.index)), body: part.slice(m.index + m[0].length) };
}

function decodeBody(headers: Record<string, string>, body: string): string {
  const enc = (headers["content-transfer-encoding"] ?? "").toLowerCase();
  if (enc === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  if (enc === "quoted-printable") return decodeQP(body).toString("utf8");
  return body;
}

/** Decode a raw message enough for assertions: headers, subject, text and HTML parts. */
export function parseMail(raw: string): { headers: Record<string, string>; subject: string; text: string; html: string } {
  const top = splitPart(raw);
  let text = "";
  let html = "";
  const walk = (headers: Record<string, string>, body: string) => {
    const ct = headers["content-type"] ?? "text/plain";
    const b = /boundary="?([^";]+)"?/i.exec(ct);
    if (/^multipart\//i.test(ct) && b) {
      for (const part of body.split(`--${b[1]}`).slice(1)) {
        if (part.startsWith("--")) break;
        const p = splitPart(part.replace(/^\r?\n/, ""));
        walk(p.headers, p.body);
      }
    } else if (/^text\/html/i.test(ct)) html += decodeBody(headers, body);
    else if (/^text\/plain/i.test(ct)) text += decodeBody(headers, body);
  };
  walk(top.headers, top.body);
  return { headers: top.headers, subject: decodeWords(top.headers.subject ?? ""), text, html };
}

/** Start an SMTP server on 127.0.0.1 (random port unless given). */
export async function startSmtpServer(opts: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const mode = opts.mode ?? "starttls";
  const cert = opts.cert ?? makeTestCert();
  const messages: ReceivedMail[] = [];
  const server = new SMTPServer({
    secure: mode === "tls",
    key: cert.key,
    cert: cert.cert,
    hideSTARTTLS: mode === "plain",
    authOptional: !opts.auth,
    allowInsecureAuth: mode === "plain",
    // hideSTARTTLS alone only hides it from EHLO; a "plain" server must really refuse the upgrade.
    disabledCommands: [...(opts.auth ? [] : ["AUTH"]), ...(mode === "plain" ? ["STARTTLS"] : [])],
    logger: false,
    onAuth(auth, _session, cb) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) return cb(null, { user: auth.username });
      return cb(new Error("Invalid username or password"));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        const parsed = parseMail(raw);
        messages.push({
          envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          envelopeTo: session.envelope.rcptTo.map((r) => r.address),
          raw,
          ...parsed,
          secure: Boolean(session.secure),
          user: session.user as string | undefined,
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  server.on("error", () => {});
  const port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
  const scheme = mode === "tls" ? "smtps" : "smtp";
  return {
    host: "127.0.0.1",
    port,
    cert,
    messages,
    url: `${scheme}://${opts.auth ? `${encodeURIComponent(opts.auth.user)}@` : ""}127.0.0.1:${port}`,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (!opts.cert) rmSync(cert.dir, { recursive: true, force: true });
    },
  };
}

/** A port on 127.0.0.1 where nothing listens (bound, read, released). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import("node:net");
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
