import { readFileSync, existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * A mechanical guard for "every message a sender sees is translated": it walks the source of every module the
 * sender commands import and lists English text handed straight to the places a person reads it (error messages
 * and hints, warnings, step labels, prompt questions) instead of through msg()/t()/warnText(). Staff-only modules
 * (watch, verify, audit, route, reconcile, forward, media, ingest except what the sender imports) are not reached.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SENDER_ENTRIES = ["send", "pack", "upload", "notify", "init", "config"].flatMap((c) => [`src/commands/${c}.ts`, `src/commands/${c}.command.ts`]);
/** Modules the closure must not follow: the registry imports every command, staff ones included. */
const NOT_FOLLOWED = new Set(["src/commands/registry.ts"]);

/** Every module reachable from the sender commands by relative imports (static and dynamic). */
function senderModules(): string[] {
  const seen = new Set<string>();
  const queue = SENDER_ENTRIES.map((f) => join(ROOT, f));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, "utf8");
    for (const m of source.matchAll(/(?:import|export)[^'"]*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g)) {
      const target = resolve(dirname(file), (m[1] ?? m[2])!).replace(/\.js$/, ".ts");
      if (existsSync(target) && !NOT_FOLLOWED.has(relative(ROOT, target))) queue.push(target);
    }
  }
  return [...seen].map((f) => relative(ROOT, f)).filter((f) => !f.startsWith("src/i18n/")).sort();
}

/** English words in a piece of static text (two letters in a row); codes and punctuation-only texts are not. */
const WORDS = /[A-Za-z]{2,}/;

/** The static text of an expression that builds a string: literals, templates, concatenations. Undefined when none. */
function staticText(node: ts.Expression): string | undefined {
  if (ts.isParenthesizedExpression(node)) return staticText(node.expression);
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isTemplateExpression(node)) return [node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join("…");
  if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    const parts = [staticText(node.left), staticText(node.right)].filter((p) => p !== undefined);
    return parts.length > 0 ? parts.join("…") : undefined;
  }
  if (ts.isConditionalExpression(node)) {
    const parts = [staticText(node.whenTrue), staticText(node.whenFalse)].filter((p) => p !== undefined);
    return parts.length > 0 ? parts.join(" | ") : undefined;
  }
  return undefined;
}

/** Error classes whose message a person reads (the ScanbridgeError family), with the index of the message argument. */
const ERROR_MESSAGE_ARG: Record<string, number> = {
  ScanbridgeError: 2,
  UsageError: 1,
  InputError: 1,
  SizeLimitError: 1,
  NetworkError: 1,
  RemoteVerificationError: 1,
  NotifyError: 1,
  LocalIoError: 1,
  InterruptedError: 0,
  SmtpDeliveryError: 1,
  WebhookDeliveryError: 1,
  DicomReadError: 1,
};
const PROMPTS = new Set(["input", "password", "confirm", "select"]);
/** Names of arrays that gather lines for a person. */
const LINE_ARRAY = /^(human|lines|[a-z]\w*Lines)$/;
/** Functions that put a message id into words (their string arguments are ids, not text). */
const TRANSLATORS = new Set(["msg", "t", "english", "warnText"]);

interface Finding {
  where: string;
  text: string;
}

/** English text a person would read, passed without a message id. */
function findUntranslated(file: string, text = readFileSync(join(ROOT, file), "utf8")): Finding[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Finding[] = [];
  const report = (node: ts.Node, kind: string, expr: ts.Expression | undefined) => {
    if (!expr) return;
    // A label or line made by a helper of the module's own (`st.label("Uploading")`): its arguments are the text.
    if (ts.isCallExpression(expr) && !TRANSLATORS.has(ts.isPropertyAccessExpression(expr.expression) ? expr.expression.name.text : expr.expression.getText())) {
      for (const arg of expr.arguments) report(node, kind, arg);
      return;
    }
    const text = staticText(expr);
    if (text === undefined || !WORDS.test(text)) return;
    const line = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
    out.push({ where: `${file}:${line} ${kind}`, text });
  };
  const propertyOf = (obj: ts.ObjectLiteralExpression, name: string): ts.Expression | undefined => {
    for (const p of obj.properties) if (ts.isPropertyAssignment(p) && p.name.getText() === name) return p.initializer;
    return undefined;
  };
  const visit = (node: ts.Node) => {
    if (ts.isNewExpression(node)) {
      const index = ERROR_MESSAGE_ARG[node.expression.getText()];
      if (index !== undefined) report(node, "error message", node.arguments?.[index]);
    }
    if (ts.isPropertyAssignment(node) && node.name.getText() === "hint") report(node, "hint", node.initializer);
    // A command's human result lines: `{ data, human: [...] }`, or made when shown: `human: () => [...]`; or
    // gathered first, in an array named for it (`human`, `lines`, `summaryLines`): `const human = [...]` (or
    // `() => [...]`), `lines.push(...)`.
    const linesOf = (init: ts.Expression | undefined) => {
      const lines = init && ts.isArrowFunction(init) && ts.isArrayLiteralExpression(init.body) ? init.body : init;
      if (lines && ts.isArrayLiteralExpression(lines)) for (const line of lines.elements) if (!ts.isSpreadElement(line)) report(line, "result line", line);
    };
    if (ts.isPropertyAssignment(node) && node.name.getText() === "human") linesOf(node.initializer);
    if (ts.isVariableDeclaration(node) && LINE_ARRAY.test(node.name.getText())) linesOf(node.initializer);
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && node.expression.name.text === "push" && LINE_ARRAY.test(node.expression.expression.getText())) {
      for (const line of node.arguments) if (!ts.isSpreadElement(line)) report(line, "result line", line);
    }
    if (ts.isObjectLiteralExpression(node)) {
      const type = propertyOf(node, "type");
      const kind = type && ts.isStringLiteral(type) ? type.text : undefined;
      if (kind === "warn" && !propertyOf(node, "text") && !node.properties.some(ts.isSpreadAssignment)) report(node, "warning", propertyOf(node, "message"));
      if (kind === "step" || kind === "step-done") report(node, "step label", propertyOf(node, "label"));
      if (kind === "info") report(node, "info line", propertyOf(node, "message"));
    }
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      const method = node.expression.name.text;
      if (PROMPTS.has(method) && /^p$|prompter/i.test(node.expression.expression.getText())) {
        report(node, "prompt", node.arguments[0]);
        const choices = node.arguments[1];
        if (method === "select" && choices && ts.isArrayLiteralExpression(choices)) {
          for (const c of choices.elements) if (ts.isObjectLiteralExpression(c)) report(c, "prompt choice", propertyOf(c, "name"));
        }
      }
      if (method === "result" && node.arguments[1] && ts.isArrayLiteralExpression(node.arguments[1])) {
        for (const line of node.arguments[1].elements) if (!ts.isSpreadElement(line)) report(line, "result line", line);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

describe("sender messages are translated", () => {
  const modules = senderModules();

  it("finds the sender modules (the walk itself works)", () => {
    expect(modules).toEqual(expect.arrayContaining(["src/commands/init.ts", "src/pack/inspect.ts", "src/transfer/sftp.ts", "src/notify/smtp.ts", "src/config/load.ts"]));
    expect(modules).not.toContain("src/commands/watch.ts");
  });

  it("the detector sees literals where a person reads them, and not translated ones", () => {
    const probe = [
      'throw new UsageError("X", "Bad thing", { hint: `Try ${x} again` });',
      'emit({ type: "warn", code: "W", message: "left out" });',
      'emit({ type: "step", id: "s", label: `Zipping ${n} files` });',
      'await ctx.prompter.input("Your name?");',
      'await p.select(t("q"), [{ name: "A patient", value: "patient" }]);',
      'return { data: {}, human: [`Wrote ${path}`] };',
      'emit({ type: "step", id: "u", label: st.label(n > 1 ? `Uploading (attempt ${n})` : "Uploading") });',
      'return { data: {}, human: () => ["Packaged", t("x")] };',
      'emit({ type: "step", id: "u", label: st.label(msg("step.upload")) });',
      'const human = [...lines, `E-mailed it to ${to}`]; human.push("Done", t("x"));',
      'const human = () => [...lines, `Sent to ${to}`];',
      'throw new UsageError("X", msg("a.b"), { hint: msg("a.b.hint") });',
      'emit({ type: "warn", code: "W", ...warnText("w") });',
      'throw new InputError("X", `${n}: ${m}`);',
    ].join("\n");
    expect(findUntranslated("probe.ts", probe).map((f) => f.where)).toEqual([
      "probe.ts:1 error message",
      "probe.ts:1 hint",
      "probe.ts:2 warning",
      "probe.ts:3 step label",
      "probe.ts:4 prompt",
      "probe.ts:5 prompt choice",
      "probe.ts:6 result line",
      "probe.ts:7 step label",
      "probe.ts:8 result line",
      "probe.ts:10 result line",
      "probe.ts:10 result line",
      "probe.ts:11 result line",
    ]);
  });

  for (const file of modules) {
    it(`${file} passes no English literal to errors, hints, warnings, steps or prompts`, () => {
      expect(findUntranslated(file).map((f) => `${f.where}: ${f.text}`)).toEqual([]);
    });
  }
});
