import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeConfigFile } from "../config/write.js";
import { NetworkError, UsageError } from "../errors.js";
import { createSmtpSender, describeSmtp, parseSmtpUrl, type SmtpSettings } from "../notify/smtp.js";
import { isEmailAddress } from "../notify/stage.js";
import { validateWebhookUrl } from "../notify/webhook.js";
import { fetchHostFingerprint, normaliseFingerprint } from "../transfer/hostkeys.js";
import { parseDestination } from "../transfer/destination.js";
import type { InitCommandOptions } from "./init.command.js";
import type { CommandContext, CommandOutput } from "./types.js";

/** An option key init asks about. */
type InitKey = keyof InitCommandOptions;

/** Side effects of `init` that reach the network, injectable for tests. */
export interface InitDeps {
  /** The SFTP server's "SHA256:..." host key fingerprint. */
  fetchHostFingerprint(host: string, port: number): Promise<string>;
  /** Connect, negotiate TLS and log in to the SMTP server without sending. */
  verifySmtp(settings: SmtpSettings): Promise<void>;
}

/** The real network checks. */
export const defaultInitDeps: InitDeps = {
  fetchHostFingerprint: (host, port) => fetchHostFingerprint(host, port),
  verifySmtp: async (s) => {
    const sender = createSmtpSender({ ...s, timeoutMs: 15_000 });
    try {
      await sender.verify();
    } finally {
      sender.close();
    }
  },
};

type Validate = (v: string) => true | string;

const validEmail: Validate = (v) => (isEmailAddress(v.trim()) ? true : `"${v}" is not an e-mail address`);
const validEmailList: Validate = (v) => {
  for (const e of splitList(v)) if (!isEmailAddress(e)) return `"${e}" is not an e-mail address`;
  return true;
};
const validPhone: Validate = (v) => (v.trim() === "" || /^\+?[0-9 ()./-]{5,}$/.test(v.trim()) ? true : "use digits, spaces and an optional leading +");
const required = (what: string, inner?: Validate): Validate => (v) => (v.trim() === "" ? `${what} is required` : inner ? inner(v) : true);
const tryValidate = (fn: () => unknown): true | string => {
  try {
    fn();
    return true;
  } catch (err) {
    return (err as Error).message;
  }
};

function splitList(v: string): string[] {
  return v.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
}

function expandHome(p: string, home: string | undefined): string {
  return home && (p === "~" || p.startsWith("~/")) ? join(home, p.slice(1)) : p;
}

/** Run `scanbridge init` with the real network checks. */
export async function runInitCommand(ctx: CommandContext<InitCommandOptions>): Promise<CommandOutput> {
  return runInit(ctx, defaultInitDeps);
}

/**
 * The set-up wizard: asks at a terminal (flags given answer their question in advance), or takes
 * everything from flags/env/existing config with --non-interactive. Checks the SFTP host key and the
 * SMTP server once, then writes the config file atomically with mode 0600, secrets only if asked.
 */
export async function runInit(ctx: CommandContext<InitCommandOptions>, deps: InitDeps): Promise<CommandOutput> {
  // The answers so far: the resolved options, completed with defaults init works out (the identity, from).
  const o: { -readonly [K in InitKey]?: InitCommandOptions[K] } = { ...ctx.options };
  const sources = ctx.sources;
  const nonInteractive = Boolean(o.nonInteractive);
  const p = ctx.prompter;
  const info = (message: string) => ctx.reporter.emit({ type: "info", message });
  const warn = (code: string, message: string) => ctx.reporter.emit({ type: "warn", code, message });
  const skipChecks = Boolean(o.skipChecks);
  if (!nonInteractive && !ctx.interactive) {
    throw new UsageError("NOT_A_TERMINAL", "`scanbridge init` asks questions and needs a terminal", {
      hint: "In scripts, pass --non-interactive with the answers as flags (see `scanbridge init --help`).",
    });
  }
  const interactive = !nonInteractive;

  if (existsSync(ctx.configPath) && !o.force) {
    if (!interactive) {
      throw new UsageError("CONFIG_EXISTS", `A config file already exists: ${ctx.configPath}`, { hint: "Pass --force to replace it (its values are kept unless overridden by flags)." });
    }
    if (!(await p.confirm(`A configuration already exists at ${ctx.configPath}. Replace it? (its answers are offered as defaults)`, false))) {
      return { data: { written: false, configFile: ctx.configPath }, human: [`Left ${ctx.configPath} unchanged.`] };
    }
  }

  const cfg: Record<string, unknown> = {};
  const secretsStored: string[] = [];
  const secretsNotStored: string[] = [];
  /** "Save anyway?" questions, asked once every other question is answered. */
  const saveQuestions: Array<{ message: string; default: boolean; data: Record<string, unknown> }> = [];
  const current = (key: InitKey): string | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    return Array.isArray(v) ? v.join(", ") : String(v);
  };
  /** Ask a text question, unless a flag answered it or we may not ask; validate either way. */
  const text = async (key: InitKey, message: string, validate: Validate = () => true): Promise<string | undefined> => {
    let v = current(key);
    if (interactive && sources[key] !== "flag") v = (await p.input(message, { default: v, validate })).trim();
    if (v === undefined || v.trim() === "") {
      const why = validate("");
      if (why !== true) throw new UsageError("INIT_MISSING", `${key}: ${why}`, { hint: `Pass ${flagOf(key)}.` });
      return undefined;
    }
    const why = validate(v);
    if (why !== true) throw new UsageError("BAD_OPTION", `Invalid value for ${key} (from ${sources[key] ?? "answer"}): ${why}`, { hint: `See ${flagOf(key)} in \`scanbridge init --help\`.` });
    return v.trim();
  };
  const choose = async <T extends string>(key: InitKey, message: string, choices: ReadonlyArray<{ name: string; value: T }>, fallback: T): Promise<T> => {
    const v = (current(key) as T | undefined) ?? fallback;
    if (interactive && sources[key] !== "flag") return p.select(message, choices, v);
    return v;
  };
  /** A secret: from the environment/config, or typed at the terminal; stored only if the user insists. */
  const secret = async (key: InitKey & keyof typeof SECRET_LABELS, message: string, envName: string): Promise<string | undefined> => {
    let v = current(key);
    if (!v && interactive) v = (await p.password(`${message} (leave empty to use ${envName} later)`)) || undefined;
    if (!v) return undefined;
    let store = Boolean(o.storeSecrets);
    if (interactive && !store) {
      store = await p.confirm(`Store the ${SECRET_LABELS[key]} in ${ctx.configPath}? Not recommended: anyone with your account can read it. (No: set ${envName} when you run scanbridge)`, false);
    }
    if (store) {
      cfg[key] = v;
      secretsStored.push(key);
    } else secretsNotStored.push(key);
    return v;
  };

  // Who is sending.
  const role = await choose("senderRole", "Who is sending the scans?", [
    { name: "A patient (or family member)", value: "patient" },
    { name: "A clinic or doctor's office", value: "clinic" },
  ], "patient");
  cfg.senderRole = role;
  cfg.senderName = await text("senderName", role === "clinic" ? "Clinic name:" : "Your full name:", required("A name"));
  cfg.senderEmail = await text("senderEmail", "Your e-mail address (coordinators reply to it):", required("An e-mail address", validEmail));
  const phone = await text("senderPhone", "Your phone number (optional, with country code):", validPhone);
  if (phone) cfg.senderPhone = phone;

  // Who to tell.
  const emails = splitList((await text("email", "Coordinator e-mail addresses (comma-separated; empty for none):", validEmailList)) ?? "");
  if (emails.length) cfg.email = emails;
  const webhookValidate: Validate = (v) => {
    for (const u of splitList(v)) {
      const r = tryValidate(() => validateWebhookUrl(u, Boolean(o.webhookInsecure)));
      if (r !== true) return r;
    }
    return true;
  };
  const hooks = splitList((await text("webhook", "Webhook URL for the hospital's system or chat (optional):", webhookValidate)) ?? "");
  if (hooks.length) {
    cfg.webhook = hooks;
    if (o.webhookInsecure) cfg.webhookInsecure = true;
    if (o.webhookCa) cfg.webhookCa = resolve(ctx.cwd, o.webhookCa);
    if (!(await secret("webhookSecret", "Webhook signing secret (shared with the hospital)", "SCANBRIDGE_WEBHOOK_SECRET"))) {
      warn("WEBHOOK_UNSIGNED", "No webhook secret: webhook requests will not be signed");
    }
  }
  if (!emails.length && !hooks.length) warn("NO_COORDINATORS", "No coordinator e-mail or webhook: nobody will be told when a package arrives");

  // Where packages go.
  const to = await text("to", "Where to upload: sftp://user@host[:port]/folder from the hospital, or a local folder (empty: decide per send):", (v) =>
    v.trim() === "" ? true : tryValidate(() => parseDestination(v, ctx.cwd)),
  );
  let hostCheck = "not applicable";
  if (to) {
    const dest = parseDestination(to, ctx.cwd);
    if (dest.kind === "local") {
      cfg.to = dest.folder;
    } else {
      cfg.to = to;
      const home = ctx.env.HOME;
      const defaultKey = ["id_ed25519", "id_ecdsa", "id_rsa"].map((k) => join(home ?? "~", ".ssh", k)).find((k) => existsSync(k));
      const auth = await choose("sftpAuth", "How do you log in to the SFTP server?", [
        { name: "With an SSH key file", value: "key" },
        { name: "With my SSH agent", value: "agent" },
        { name: "With a password", value: "password" },
      ], defaultKey ? "key" : "password");
      if (auth === "key") {
        if (!current("identity") && defaultKey) o.identity = defaultKey;
        const key = await text("identity", "Private key file:", required("A key file", (v) => (existsSync(resolve(ctx.cwd, expandHome(v.trim(), home))) ? true : `no such file: ${v}`)));
        cfg.identity = resolve(ctx.cwd, expandHome(key!, home));
      } else if (auth === "password") {
        await secret("sftpPassword", "SFTP password", "SCANBRIDGE_SFTP_PASSWORD");
      }
      const given = current("hostFingerprint") ? normaliseFingerprint(current("hostFingerprint")!) : undefined;
      if (skipChecks) {
        hostCheck = given ? "pinned as given (not checked: --skip-checks)" : "not pinned (--skip-checks)";
        if (given) cfg.hostFingerprint = given;
      } else {
        let seen: string | undefined;
        try {
          seen = normaliseFingerprint(await deps.fetchHostFingerprint(dest.host, dest.port));
        } catch (err) {
          warn("HOST_KEY_UNCHECKED", `Could not reach ${dest.host}:${dest.port} to read its host key: ${(err as Error).message}`);
        }
        if (seen === undefined) {
          if (given) cfg.hostFingerprint = given;
          hostCheck = given ? "pinned as given (server not reachable)" : "not pinned (server not reachable)";
          if (interactive) saveQuestions.push({ message: "The SFTP server could not be checked. Save the configuration anyway?", default: true, data: {} });
        } else if (given && given !== seen) {
          throw new NetworkError("HOST_KEY_MISMATCH", `The server ${dest.host}:${dest.port} presents ${seen}, not the fingerprint you gave (${given}). Nothing was written.`, {
            hint: "Do not use this server until the hospital confirms its key by phone or another channel.",
            details: { fingerprint: seen, expected: given },
          });
        } else if (given) {
          cfg.hostFingerprint = seen;
          hostCheck = "matches the fingerprint given; pinned";
          info(`Host key of ${dest.host}: ${seen} (matches; pinned)`);
        } else {
          info(`The server ${dest.host}:${dest.port} presents the host key fingerprint\n    ${seen}`);
          let pin: boolean;
          if (interactive) pin = await p.confirm("Is this the fingerprint the hospital gave you? (compare every character; answer No if unsure)", false);
          else if (o.acceptHostKey) pin = true;
          else {
            throw new UsageError("HOST_KEY_UNCONFIRMED", `The host key of ${dest.host} (${seen}) was not confirmed`, {
              hint: `Pass --host-fingerprint with the fingerprint the hospital gave you, or --accept-host-key to trust ${seen}.`,
              details: { fingerprint: seen },
            });
          }
          if (!pin) {
            throw new NetworkError("HOST_KEY_REJECTED", "Host key not confirmed; nothing was written", {
              hint: "Ask the hospital for the server's fingerprint, then run `scanbridge init --host-fingerprint SHA256:...`.",
              details: { fingerprint: seen },
            });
          }
          cfg.hostFingerprint = seen;
          hostCheck = "pinned";
        }
      }
    }
  }

  // How e-mail is sent.
  let smtpCheck = "not applicable";
  if (emails.length) {
    const smtpUrl = (await text("smtp", "SMTP server for sending e-mail: smtp://user@host:587 (STARTTLS) or smtps://user@host:465:", required("An SMTP server", (v) => tryValidate(() => parseSmtpUrl(v.trim())))))!;
    cfg.smtp = smtpUrl;
    const server = parseSmtpUrl(smtpUrl);
    if (!current("from") && typeof cfg.senderEmail === "string") o.from = cfg.senderEmail;
    cfg.from = await text("from", "Send notification e-mails from (address the server allows):", required("A sender address", validEmail));
    if (o.smtpInsecure) cfg.smtpInsecure = true;
    if (o.smtpCa) cfg.smtpCa = resolve(ctx.cwd, o.smtpCa);
    const password = server.user ? await secret("smtpPassword", `SMTP password for ${server.user}`, "SCANBRIDGE_SMTP_PASSWORD") : undefined;
    if (skipChecks) smtpCheck = "skipped (--skip-checks)";
    else if (server.user && !password) {
      smtpCheck = "skipped (no password: set SCANBRIDGE_SMTP_PASSWORD)";
      warn("SMTP_UNCHECKED", "SMTP server not tested: no password available");
    } else {
      const settings: SmtpSettings = { ...server, insecure: Boolean(o.smtpInsecure), from: String(cfg.from) };
      if (password) settings.password = password;
      if (o.smtpCa) settings.ca = readFileSync(resolve(ctx.cwd, o.smtpCa), "utf8");
      try {
        await deps.verifySmtp(settings);
        smtpCheck = "ok";
        info(`SMTP server ${describeSmtp(server)}: connected${server.secure ? " (TLS)" : o.smtpInsecure ? "" : " (STARTTLS)"}${server.user ? ", logged in" : ""}`);
      } catch (err) {
        smtpCheck = `failed: ${(err as Error).message}`;
        warn("SMTP_CHECK_FAILED", `SMTP test failed: ${(err as Error).message}`);
        if (interactive) saveQuestions.push({ message: "The SMTP test failed. Save the configuration anyway?", default: false, data: { smtpCheck } });
      }
    }
  }

  // What the messages say.
  let includeName = Boolean(o.includePatientName);
  if (interactive && sources.includePatientName !== "flag") {
    includeName = await p.confirm("Put the patient's name in notifications? (No is safer: e-mail is not a place for medical details)", includeName);
  }
  cfg.includePatientName = includeName;

  // Asked after the last question, so answering No never throws away answers still to come.
  for (const q of saveQuestions) {
    if (!(await p.confirm(q.message, q.default))) return { data: { written: false, configFile: ctx.configPath, ...q.data }, human: ["Nothing written."] };
  }

  await writeConfigFile(ctx.configPath, cfg);
  const human = [
    `Wrote ${ctx.configPath} (mode 0600).`,
    `  SFTP host key: ${hostCheck}`,
    `  SMTP: ${smtpCheck}`,
    ...(secretsStored.length ? [`  Secrets stored in the file: ${secretsStored.join(", ")}`] : []),
    ...(secretsNotStored.length ? [`  Not stored (set them in the environment when you run scanbridge): ${secretsNotStored.map(envOf).join(", ")}`] : []),
    "Check it with: scanbridge config show",
  ];
  return {
    data: { written: true, configFile: ctx.configPath, mode: "0600", keys: Object.keys(cfg).sort(), hostKey: hostCheck, hostFingerprint: cfg.hostFingerprint, smtpCheck, secretsStored, secretsNotStored },
    human,
  };
}

/** How the wizard names each secret to a person. */
const SECRET_LABELS = { smtpPassword: "SMTP password", webhookSecret: "webhook signing secret", sftpPassword: "SFTP password" } as const;

function envOf(key: string): string {
  return { smtpPassword: "SCANBRIDGE_SMTP_PASSWORD", webhookSecret: "SCANBRIDGE_WEBHOOK_SECRET", sftpPassword: "SCANBRIDGE_SFTP_PASSWORD" }[key] ?? key;
}

function flagOf(key: string): string {
  return "--" + key.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}
