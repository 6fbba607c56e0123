import { createRequire } from "node:module";
import type { IntlMessageFormat } from "intl-messageformat";
import { en, type MessageId } from "./catalogs/en.js";
import { es } from "./catalogs/es.js";
import { zhHans } from "./catalogs/zh-Hans.js";
import { helpEs } from "./help/es.js";
import { helpZhHans } from "./help/zh-Hans.js";
import type { HelpCatalog } from "./help/types.js";

export type { MessageId } from "./catalogs/en.js";

/** Languages a sender can read scanbridge in. English is the source; the others must translate every message. */
export const LANGUAGES = ["en", "es", "zh-Hans"] as const;
export type Language = (typeof LANGUAGES)[number];

/** Values a message interpolates (ICU MessageFormat arguments); a LocalText value is rendered in the same language. */
export type MessageValues = { [name: string]: string | number | Date | LocalText };

/** A message to show in the reader's language later (errors and warnings: English in --json, localised for a person). */
export interface LocalText {
  id: MessageId;
  values?: MessageValues;
}

/** Every catalog, by language (tests check that each translates every English message with the same arguments). */
export const CATALOGS: Record<Language, Record<MessageId, string>> = { en, es, "zh-Hans": zhHans };
/** Translations of --help (command summaries and option descriptions, whose English is in the command specs). */
export const HELP_CATALOGS: Record<Exclude<Language, "en">, HelpCatalog> = { es: helpEs, "zh-Hans": helpZhHans };

// The reader's language for this process: set once by cli.ts from --lang, SCANBRIDGE_LANG or the system locale.
let current: Language = "en";
const compiled = new Map<string, IntlMessageFormat>();
// intl-messageformat (and the ICU data its number and plural formats load) is needed only for messages with
// plurals, selects, numbers or dates: loaded on the first such message (start-up, issue 15).
let messageFormat: typeof IntlMessageFormat | undefined;
const loadMessageFormat = () => (messageFormat ??= (createRequire(import.meta.url)("intl-messageformat") as { IntlMessageFormat: typeof IntlMessageFormat }).IntlMessageFormat);

/**
 * A message whose only arguments are plain `{name}` and whose apostrophes are all literal (none doubled, none
 * before a character ICU quotes) is its text with each argument replaced: what intl-messageformat returns for it
 * when every value is a string or a number (a plain argument shows a number as String(n)); dates and missing values
 * go through intl-messageformat.
 * test/i18n/catalogs.test.ts checks the two agree for every message of every catalog.
 */
const SIMPLE_ARGUMENT = /\{\s*([A-Za-z_][\w]*)\s*\}/g;
function isSimple(source: string): boolean {
  return !/'['{}<>#|]/.test(source) && !/[{}]/.test(source.replace(SIMPLE_ARGUMENT, ""));
}

/** Set the language human output is written in (cli.ts only). */
export function setLanguage(lang: Language): void {
  current = lang;
}

/** The language human output is written in. */
export function currentLanguage(): Language {
  return current;
}

/**
 * Pick a supported language from a locale name as found in --lang, SCANBRIDGE_LANG, LC_ALL, LC_MESSAGES, LANG or
 * the system (`es_MX.UTF-8`, `zh-CN`, `zh_TW`, `es-419`, `C`). Any Chinese gets Simplified Chinese (the only
 * Chinese catalog; closer for a Traditional reader than English). Undefined when nothing matches.
 */
export function matchLanguage(locale: string | undefined): Language | undefined {
  if (!locale) return undefined;
  const tag = locale.trim().split(/[.@]/)[0]!.replace(/_/g, "-").toLowerCase();
  if (tag === "" || tag === "c" || tag === "posix") return undefined;
  const primary = tag.split("-")[0];
  if (primary === "en") return "en";
  if (primary === "es") return "es";
  if (primary === "zh") return "zh-Hans";
  return undefined;
}

/**
 * The language to use: --lang, else SCANBRIDGE_LANG, else the POSIX locale (the first set of LC_ALL, LC_MESSAGES,
 * LANG; `C` or a language we lack means English), else the system locale (Windows and macOS terminals often set no
 * LANG; Node's ICU default locale is then the user's), else English. `unsupported` names an explicit choice
 * (--lang or SCANBRIDGE_LANG) we have no catalog for, so the caller can refuse it.
 */
export function resolveLanguage(flag: string | undefined, env: NodeJS.ProcessEnv, systemLocale: string | (() => string | undefined) | undefined): { lang: Language; unsupported?: string } {
  const chosen = flag || env.SCANBRIDGE_LANG;
  if (chosen) {
    const lang = matchLanguage(chosen);
    return lang ? { lang } : { lang: "en", unsupported: chosen };
  }
  const posix = env.LC_ALL || env.LC_MESSAGES || env.LANG;
  if (posix) return { lang: matchLanguage(posix) ?? "en" };
  // Asked only here: the first Intl object of a process loads ICU's locale data (about 25 ms).
  return { lang: matchLanguage(typeof systemLocale === "function" ? systemLocale() : systemLocale) ?? "en" };
}

function format(lang: Language, id: MessageId, values?: MessageValues): string {
  const source = CATALOGS[lang][id] ?? en[id];
  const plain: Record<string, string | number | Date> = {};
  for (const [k, v] of Object.entries(values ?? {})) plain[k] = typeof v === "object" && !(v instanceof Date) ? format(lang, v.id, v.values) : v;
  if (isSimple(source)) {
    let missing = false;
    const text = source.replace(SIMPLE_ARGUMENT, (_, name: string) => {
      const v = plain[name];
      if (typeof v === "string" || typeof v === "number") return String(v);
      missing = true;
      return "";
    });
    if (!missing) return text;
  }
  return formatIcu(lang, id, source, values ? plain : undefined);
}

/** The message through intl-messageformat (compiled once per language and message). */
export function formatIcu(lang: Language, id: string, source: string, values?: Record<string, string | number | Date>): string {
  const key = `${lang}\u0000${id}`;
  let f = compiled.get(key);
  if (!f) {
    // ignoreTag: "<Name>.zip" in a message is text, not a rich-text tag.
    f = new (loadMessageFormat())(source, lang, undefined, { ignoreTag: true });
    compiled.set(key, f);
  }
  return String(values ? f.format(values) : f.format());
}

/** A message in the reader's language. */
export function t(id: MessageId, values?: MessageValues): string {
  return format(current, id, values);
}

/** Items joined as a list in the reader's language ("a, b, c"; Chinese "a、b、c"). */
export function listOf(items: string[]): string {
  return items.join(t("list.separator"));
}

/** A message in English: what --json, error codes' messages and logs carry, whatever the reader's language. */
export function english(id: MessageId, values?: MessageValues): string {
  return format("en", id, values);
}

/** A message kept for later rendering (see LocalText). */
export function msg(id: MessageId, values?: MessageValues): LocalText {
  return values ? { id, values } : { id };
}

/** A LocalText or plain English text in the reader's language (plain text is shown as it is). */
export function localize(text: LocalText | string): string {
  return typeof text === "string" ? text : t(text.id, text.values);
}

/** For warn events: the English `message` (JSON, logs) and the `text` the reporter shows a person. */
export function warnText(id: MessageId, values?: MessageValues): { message: string; text: LocalText } {
  return { message: english(id, values), text: msg(id, values) };
}

/** --help text of a command (by path) or an option (by key, or "<command>.<key>") in the reader's language; the spec's English otherwise. */
export function helpText(kind: "commands" | "options", key: string, englishText: string, command?: string): string {
  if (current === "en") return englishText;
  const table = HELP_CATALOGS[current][kind];
  return (command !== undefined ? table[`${command}.${key}`] : undefined) ?? table[key] ?? englishText;
}
