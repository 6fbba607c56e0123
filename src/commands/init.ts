import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeConfigFile } from "../config/write.js";
import { NetworkError, ScanbridgeError, UsageError } from "../errors.js";
import { localize, msg, t, warnText, type LocalText } from "../i18n/index.js";
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

/** A check of an answer: true, or why it is wrong (shown in the reader's language, kept in English for --json). */
type Validate = (v: string) => true | LocalText | string;

const validEmail: Validate = (v) => (isEmailAddress(v.trim()) ? true : msg("option.notEmail", { value: v }));
const validEmailList: Validate = (v) => {
  for (const e of splitList(v)) if (!isEmailAddress(e)) return msg("option.notEmail", { value: e });
  return true;
};
const validPhone: Validate = (v) => (v.trim() === "" || /^\+?[0-9 ()./-]{5,}$/.test(v.trim()) ? true : msg("init.phoneInvalid"));
const required = (what: LocalText, inner?: Validate): Validate => (v) => (v.trim() === "" ? msg("init.required", { what }) : inner ? inner(v) : true);
const tryValidate = (fn: () => unknown): true | LocalText | string => {
  try {
    fn();
    return true;
  } catch (err) {
    return err instanceof ScanbridgeError ? err.text : (err as Error).message;
  }
};
/** A Validate for the prompt library, which shows the string it returns. */
const forPrompt = (validate: Validate) => (v: string): true | string => {
  const r = validate(v);
  return r === true ? true : localize(r);
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
  const warn = (code: string, text: LocalText) => ctx.reporter.emit({ type: "warn", code, ...warnText(text.id, text.values) });
  const skipChecks = Boolean(o.skipChecks);
  if (!nonInteractive && !ctx.interactive) {
    throw new UsageError("NOT_A_TERMINAL", msg("init.notTerminal"), {
      hint: msg("init.notTerminal.hint"),
    });
  }
  const interactive = !nonInteractive;

  if (existsSync(ctx.configPath) && !o.force) {
    if (!interactive) {
      throw new UsageError("CONFIG_EXISTS", msg("init.exists", { path: ctx.configPath }), { hint: msg("init.exists.hint") });
    }
    if (!(await p.confirm(t("init.askReplace", { path: ctx.configPath }), false))) {
      return { data: { written: false, configFile: ctx.configPath }, human: [t("init.leftUnchanged", { path: ctx.configPath })] };
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
    if (interactive && sources[key] !== "flag") v = (await p.input(message, { default: v, validate: forPrompt(validate) })).trim();
    if (v === undefined || v.trim() === "") {
      const why = validate("");
      if (why !== true) throw new UsageError("INIT_MISSING", msg("init.missing", { key, why }), { hint: msg("init.missing.hint", { flag: flagOf(key) }) });
      return undefined;
    }
    const why = validate(v);
    if (why !== true) throw new UsageError("BAD_OPTION", msg("option.invalid", { key, source: sources[key] ?? "answer", why }), { hint: msg("init.badOption.hint", { flag: flagOf(key) }) });
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
    if (!v && interactive) v = (await p.password(t("init.askSecret", { question: message, env: envName }))) || undefined;
    if (!v) return undefined;
    let store = Boolean(o.storeSecrets);
    if (interactive && !store) {
      store = await p.confirm(t("init.askStoreSecret", { secret: t(SECRET_LABELS[key]), path: ctx.configPath, env: envName }), false);
    }
    if (store) {
      cfg[key] = v;
      secretsStored.push(key);
    } else secretsNotStored.push(key);
    return v;
  };

  // Who is sending.
  const role = await choose("senderRole", t("init.askRole"), [
    { name: t("init.role.patient"), value: "patient" },
    { name: t("init.role.clinic"), value: "clinic" },
  ], "patient");
  cfg.senderRole = role;
  cfg.senderName = await text("senderName", t(role === "clinic" ? "init.askClinicName" : "init.askName"), required(msg("init.aName")));
  cfg.senderEmail = await text("senderEmail", t("init.askEmail"), required(msg("init.anEmail"), validEmail));
  const phone = await text("senderPhone", t("init.askPhone"), validPhone);
  if (phone) cfg.senderPhone = phone;

  // Who to tell.
  const emails = splitList((await text("email", t("init.askCoordinators"), validEmailList)) ?? "");
  if (emails.length) cfg.email = emails;
  const webhookValidate: Validate = (v) => {
    for (const u of splitList(v)) {
      const r = tryValidate(() => validateWebhookUrl(u, Boolean(o.webhookInsecure)));
      if (r !== true) return r;
    }
    return true;
  };
  const hooks = splitList((await text("webhook", t("init.askWebhook"), webhookValidate)) ?? "");
  if (hooks.length) {
    cfg.webhook = hooks;
    if (o.webhookInsecure) cfg.webhookInsecure = true;
    if (o.webhookCa) cfg.webhookCa = resolve(ctx.cwd, o.webhookCa);
    if (!(await secret("webhookSecret", t("init.askWebhookSecret"), "SCANBRIDGE_WEBHOOK_SECRET"))) {
      warn("WEBHOOK_UNSIGNED", msg("init.webhookUnsigned"));
    }
  }
  if (!emails.length && !hooks.length) warn("NO_COORDINATORS", msg("init.noCoordinators"));

  // Where packages go.
  const to = await text("to", t("init.askTo"), (v) =>
    v.trim() === "" ? true : tryValidate(() => parseDestination(v, ctx.cwd)),
  );
  // English for --json, the reader's language for the summary lines.
  let hostCheck = "not applicable";
  let hostCheckText: LocalText = msg("init.check.notApplicable");
  if (to) {
    const dest = parseDestination(to, ctx.cwd);
    if (dest.kind === "local") {
      cfg.to = dest.folder;
    } else {
      cfg.to = to;
      const home = ctx.env.HOME;
      const defaultKey = ["id_ed25519", "id_ecdsa", "id_rsa"].map((k) => join(home ?? "~", ".ssh", k)).find((k) => existsSync(k));
      const auth = await choose("sftpAuth", t("init.askAuth"), [
        { name: t("init.auth.key"), value: "key" },
        { name: t("init.auth.agent"), value: "agent" },
        { name: t("init.auth.password"), value: "password" },
      ], defaultKey ? "key" : "password");
      if (auth === "key") {
        if (!current("identity") && defaultKey) o.identity = defaultKey;
        const key = await text("identity", t("init.askKey"), required(msg("init.aKeyFile"), (v) => (existsSync(resolve(ctx.cwd, expandHome(v.trim(), home))) ? true : msg("init.noSuchFile", { path: v }))));
        cfg.identity = resolve(ctx.cwd, expandHome(key!, home));
      } else if (auth === "password") {
        await secret("sftpPassword", t("init.askSftpPassword"), "SCANBRIDGE_SFTP_PASSWORD");
      }
      const given = current("hostFingerprint") ? normaliseFingerprint(current("hostFingerprint")!) : undefined;
      if (skipChecks) {
        hostCheck = given ? "pinned as given (not checked: --skip-checks)" : "not pinned (--skip-checks)";
        hostCheckText = msg(given ? "init.check.pinnedSkipped" : "init.check.notPinnedSkipped");
        if (given) cfg.hostFingerprint = given;
      } else {
        let seen: string | undefined;
        try {
          seen = normaliseFingerprint(await deps.fetchHostFingerprint(dest.host, dest.port));
        } catch (err) {
          warn("HOST_KEY_UNCHECKED", msg("init.hostUnreachable", { host: `${dest.host}:${dest.port}`, reason: err instanceof ScanbridgeError ? err.text : (err as Error).message }));
        }
        if (seen === undefined) {
          if (given) cfg.hostFingerprint = given;
          hostCheck = given ? "pinned as given (server not reachable)" : "not pinned (server not reachable)";
          hostCheckText = msg(given ? "init.check.pinnedUnreachable" : "init.check.notPinnedUnreachable");
          if (interactive) saveQuestions.push({ message: t("init.askSaveUnchecked"), default: true, data: {} });
        } else if (given && given !== seen) {
          throw new NetworkError("HOST_KEY_MISMATCH", msg("init.hostMismatch", { host: `${dest.host}:${dest.port}`, seen, given }), {
            hint: msg("init.hostMismatch.hint"),
            details: { fingerprint: seen, expected: given },
          });
        } else if (given) {
          cfg.hostFingerprint = seen;
          hostCheck = "matches the fingerprint given; pinned";
          hostCheckText = msg("init.check.matches");
          info(t("init.hostMatches", { host: dest.host, fingerprint: seen }));
        } else {
          info(t("init.hostPresents", { host: `${dest.host}:${dest.port}`, fingerprint: seen }));
          let pin: boolean;
          if (interactive) pin = await p.confirm(t("init.askFingerprint"), false);
          else if (o.acceptHostKey) pin = true;
          else {
            throw new UsageError("HOST_KEY_UNCONFIRMED", msg("init.hostUnconfirmed", { host: dest.host, fingerprint: seen }), {
              hint: msg("init.hostUnconfirmed.hint", { fingerprint: seen }),
              details: { fingerprint: seen },
            });
          }
          if (!pin) {
            throw new NetworkError("HOST_KEY_REJECTED", msg("init.hostRejected"), {
              hint: msg("init.hostRejected.hint"),
              details: { fingerprint: seen },
            });
          }
          cfg.hostFingerprint = seen;
          hostCheck = "pinned";
          hostCheckText = msg("init.check.pinned");
        }
      }
    }
  }

  // How e-mail is sent.
  let smtpCheck = "not applicable";
  let smtpCheckText: LocalText = msg("init.check.notApplicable");
  if (emails.length) {
    const smtpUrl = (await text("smtp", t("init.askSmtp"), required(msg("init.anSmtp"), (v) => tryValidate(() => parseSmtpUrl(v.trim())))))!;
    cfg.smtp = smtpUrl;
    const server = parseSmtpUrl(smtpUrl);
    if (!current("from") && typeof cfg.senderEmail === "string") o.from = cfg.senderEmail;
    cfg.from = await text("from", t("init.askFrom"), required(msg("init.aSender"), validEmail));
    if (o.smtpInsecure) cfg.smtpInsecure = true;
    if (o.smtpCa) cfg.smtpCa = resolve(ctx.cwd, o.smtpCa);
    const password = server.user ? await secret("smtpPassword", t("init.askSmtpPassword", { user: server.user }), "SCANBRIDGE_SMTP_PASSWORD") : undefined;
    if (skipChecks) {
      smtpCheck = "skipped (--skip-checks)";
      smtpCheckText = msg("init.check.skipped");
    } else if (server.user && !password) {
      smtpCheck = "skipped (no password: set SCANBRIDGE_SMTP_PASSWORD)";
      smtpCheckText = msg("init.check.noPassword");
      warn("SMTP_UNCHECKED", msg("init.smtpUnchecked"));
    } else {
      const settings: SmtpSettings = { ...server, insecure: Boolean(o.smtpInsecure), from: String(cfg.from) };
      if (password) settings.password = password;
      if (o.smtpCa) settings.ca = readFileSync(resolve(ctx.cwd, o.smtpCa), "utf8");
      try {
        await deps.verifySmtp(settings);
        smtpCheck = "ok";
        smtpCheckText = msg("init.check.ok");
        const tls = server.secure ? "TLS" : o.smtpInsecure ? "none" : "STARTTLS";
        info(t("init.smtpConnected", { server: describeSmtp(server), tls, login: server.user ? "yes" : "no" }));
      } catch (err) {
        smtpCheck = `failed: ${(err as Error).message}`;
        const reason = err instanceof ScanbridgeError ? err.text : (err as Error).message;
        smtpCheckText = msg("init.check.failed", { reason });
        warn("SMTP_CHECK_FAILED", msg("init.smtpFailed", { reason }));
        if (interactive) saveQuestions.push({ message: t("init.askSaveSmtpFailed"), default: false, data: { smtpCheck } });
      }
    }
  }

  // What the messages say.
  let includeName = Boolean(o.includePatientName);
  if (interactive && sources.includePatientName !== "flag") {
    includeName = await p.confirm(t("init.askIncludeName"), includeName);
  }
  cfg.includePatientName = includeName;

  // Asked after the last question, so answering No never throws away answers still to come.
  for (const q of saveQuestions) {
    if (!(await p.confirm(q.message, q.default))) return { data: { written: false, configFile: ctx.configPath, ...q.data }, human: [t("init.nothingWritten")] };
  }

  await writeConfigFile(ctx.configPath, cfg);
  const human = [
    t("init.wrote", { path: ctx.configPath }),
    t("init.summary.hostKey", { check: hostCheckText }),
    t("init.summary.smtp", { check: smtpCheckText }),
    ...(secretsStored.length ? [t("init.summary.stored", { list: secretsStored.join(", ") })] : []),
    ...(secretsNotStored.length ? [t("init.summary.notStored", { list: secretsNotStored.map(envOf).join(", ") })] : []),
    t("init.checkWith"),
  ];
  return {
    data: { written: true, configFile: ctx.configPath, mode: "0600", keys: Object.keys(cfg).sort(), hostKey: hostCheck, hostFingerprint: cfg.hostFingerprint, smtpCheck, secretsStored, secretsNotStored },
    human,
  };
}

/** How the wizard names each secret to a person. */
const SECRET_LABELS = { smtpPassword: "init.secret.smtp", webhookSecret: "init.secret.webhook", sftpPassword: "init.secret.sftp" } as const;

function envOf(key: string): string {
  return { smtpPassword: "SCANBRIDGE_SMTP_PASSWORD", webhookSecret: "SCANBRIDGE_WEBHOOK_SECRET", sftpPassword: "SCANBRIDGE_SFTP_PASSWORD" }[key] ?? key;
}

function flagOf(key: string): string {
  return "--" + key.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}
