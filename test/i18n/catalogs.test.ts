import { IntlMessageFormat } from "intl-messageformat";
import { describe, expect, it } from "vitest";
import { commandSpecs } from "../../src/commands/registry.js";
import type { AnyCommandSpec } from "../../src/commands/types.js";
import { CATALOGS, HELP_CATALOGS, LANGUAGES, currentLanguage, matchLanguage, resolveLanguage, setLanguage, t, type MessageId } from "../../src/i18n/index.js";

/** Commands a patient or clinic uses; hospital-side commands (watch, verify, audit, route, reconcile) are for staff, in English. */
const SENDER_COMMANDS = ["send", "pack", "inspect", "upload", "notify", "init", "config"];

type Ast = ReturnType<IntlMessageFormat["getAst"]>;
/** Every argument a message uses, with its kind (plain, plural, select, ...), including those inside plural branches. */
function argumentsOf(ast: Ast, out = new Set<string>()): Set<string> {
  for (const el of ast as Array<{ type: number; value?: string; options?: Record<string, { value: Ast }> }>) {
    // 1 argument, 2 number, 3 date, 4 time, 5 select, 6 plural, 8 tag (types of @formatjs/icu-messageformat-parser)
    if (el.type === 1 || el.type === 2 || el.type === 3 || el.type === 4) out.add(el.value!);
    if (el.type === 5 || el.type === 6) {
      out.add(el.value!);
      for (const branch of Object.values(el.options ?? {})) argumentsOf(branch.value, out);
    }
  }
  return out;
}

describe("message catalogs", () => {
  const english = CATALOGS.en;
  for (const lang of LANGUAGES.filter((l) => l !== "en")) {
    it(`${lang} translates every English message, with the same arguments, and nothing else`, () => {
      const catalog = CATALOGS[lang] as Record<string, string>;
      expect(Object.keys(english).filter((id) => !(id in catalog))).toEqual([]);
      expect(Object.keys(catalog).filter((id) => !(id in english))).toEqual([]);
      const different: string[] = [];
      for (const [id, source] of Object.entries(english)) {
        const want = [...argumentsOf(new IntlMessageFormat(source, "en", undefined, { ignoreTag: true }).getAst())].sort();
        const got = [...argumentsOf(new IntlMessageFormat(catalog[id]!, lang, undefined, { ignoreTag: true }).getAst())].sort();
        if (JSON.stringify(want) !== JSON.stringify(got)) different.push(`${id}: ${want.join(",")} vs ${got.join(",")}`);
      }
      expect(different).toEqual([]);
    });

    it(`${lang} translates --help of every sender command and option`, () => {
      const help = HELP_CATALOGS[lang as Exclude<typeof lang, "en">];
      const missing: string[] = [];
      const walk = (spec: AnyCommandSpec, path: string) => {
        if (!help.commands[path]) missing.push(`command ${path}`);
        for (const o of spec.options) {
          if (!o.flags || o.secret) continue;
          if (!help.options[`${path}.${o.key}`] && !help.options[o.key]) missing.push(`option ${path} --${o.key}`);
        }
        for (const sub of spec.subcommands ?? []) walk(sub, `${path} ${sub.name}`);
      };
      for (const spec of commandSpecs.filter((s) => SENDER_COMMANDS.includes(s.name))) walk(spec, spec.name);
      expect(missing).toEqual([]);
    });
  }

  it("the test's argument check fails when a translation drops or renames an argument", () => {
    const args = (m: string) => [...argumentsOf(new IntlMessageFormat(m, "es").getAst())].sort();
    expect(args("{n, plural, one {# archivo de {who}} other {# archivos}}")).toEqual(["n", "who"]);
    expect(args("{n} archivos")).not.toEqual(args("{count} archivos"));
  });
});

describe("formatting", () => {
  it("gives exactly what intl-messageformat gives, for every message of every catalog (plain text, string values)", () => {
    // t() formats messages with only plain {name} arguments itself (intl-messageformat loads only for the others).
    // Values with characters ICU treats specially, so a wrong fast path would show.
    const before = currentLanguage();
    const differing: string[] = [];
    try {
      for (const lang of LANGUAGES) {
        setLanguage(lang);
        for (const [id, source] of Object.entries(CATALOGS[lang])) {
          const icu = new IntlMessageFormat(source, lang, undefined, { ignoreTag: true });
          const names = [...argumentsOf(icu.getAst())];
          const kinds = (icu.getAst() as Array<{ type: number }>).filter((el) => el.type !== 0 && el.type !== 1);
          if (kinds.length > 0) continue; // plural/select/number/date: intl-messageformat itself formats them
          const values = Object.fromEntries(names.map((n) => [n, `<${n}> '{x}' #1's`]));
          const want = String(names.length ? icu.format(values) : icu.format());
          const got = t(id as MessageId, names.length ? values : undefined);
          if (got !== want) differing.push(`${lang} ${id}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
        }
      }
    } finally {
      setLanguage(before);
    }
    expect(differing).toEqual([]);
  });

  it("formats numbers, plurals and missing values as intl-messageformat does", () => {
    const before = currentLanguage();
    try {
      setLanguage("en");
      // A number in a plain argument is shown as it is (intl-messageformat's String(n)); a plural formats it for the
      // locale and picks its branch; a missing value throws.
      expect(t("help.default", { value: 12345 })).toBe(String(new IntlMessageFormat(CATALOGS.en["help.default"], "en").format({ value: 12345 })));
      expect(t("help.default", { value: 0 })).toBe("default: 0");
      expect(t("pack.kind.image", { n: 1 })).toBe("1 image");
      expect(t("pack.kind.image", { n: 1234 })).toBe("1,234 images");
      expect(() => t("help.default")).toThrow(/value/);
      expect(t("report.warning", { message: { id: "help.default", values: { value: "x" } } })).toBe("warning: default: x");
    } finally {
      setLanguage(before);
    }
  });
});

describe("choosing the language", () => {
  it("takes --lang, then SCANBRIDGE_LANG, then LC_ALL/LC_MESSAGES/LANG, then the system locale", () => {
    expect(resolveLanguage("es", { SCANBRIDGE_LANG: "zh" }, "en-US").lang).toBe("es");
    expect(resolveLanguage(undefined, { SCANBRIDGE_LANG: "zh_CN.UTF-8", LANG: "es_MX.UTF-8" }, "en-US").lang).toBe("zh-Hans");
    expect(resolveLanguage(undefined, { LC_ALL: "es_ES.UTF-8", LANG: "en_US.UTF-8" }, "en-US").lang).toBe("es");
    expect(resolveLanguage(undefined, { LC_MESSAGES: "zh_TW.UTF-8", LANG: "es_MX" }, "en-US").lang).toBe("zh-Hans");
    // C or a language without a catalog in the POSIX locale means English, not the system's.
    expect(resolveLanguage(undefined, { LANG: "C.UTF-8" }, "es-MX").lang).toBe("en");
    expect(resolveLanguage(undefined, { LANG: "fr_FR.UTF-8" }, "es-MX").lang).toBe("en");
    // Windows and macOS terminals often set no LANG: the system locale decides.
    expect(resolveLanguage(undefined, {}, "es-419").lang).toBe("es");
    expect(resolveLanguage(undefined, {}, "de-DE").lang).toBe("en");
  });

  it("refuses an explicit language it has no catalog for, and reads the usual spellings", () => {
    expect(resolveLanguage("fr", {}, "en")).toEqual({ lang: "en", unsupported: "fr" });
    expect(resolveLanguage(undefined, { SCANBRIDGE_LANG: "ar" }, "en")).toEqual({ lang: "en", unsupported: "ar" });
    expect(["es", "ES", "es-419", "es_MX.UTF-8", "es_ES@euro"].map(matchLanguage)).toEqual(["es", "es", "es", "es", "es"]);
    expect(["zh", "zh-CN", "zh_Hans", "zh-Hant-TW", "zh_SG.GB18030"].map(matchLanguage)).toEqual(Array(5).fill("zh-Hans"));
    expect(["C", "POSIX", "", undefined, "pt_BR"].map(matchLanguage)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });
});
