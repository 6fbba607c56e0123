import { t, type MessageId, type MessageValues } from "./index.js";

/**
 * commander's own usage errors ("error: missing required argument 'inputs'") in the reader's language. commander
 * builds these texts itself in English and passes them to `outputError`; this maps each of its message shapes
 * (commander 14: missingArgument, optionMissingArgument, missingMandatoryOptionValue, unknownOption,
 * unknownCommand, excessArguments, invalidArgument, conflictingOption) to a catalog message. A text it does not
 * know is shown as commander wrote it, so a new commander message is never lost.
 */
export function translateUsageError(text: string): string {
  const trailing = /\n*$/.exec(text)![0];
  const body = text.slice(0, text.length - trailing.length);
  const [first, ...rest] = body.split("\n");
  const m = /^error: (.*)$/s.exec(first!);
  if (!m) return text;
  const message = translateMessage(m[1]!);
  if (message === undefined) return text;
  const suggestion = rest.map(translateSuggestion);
  return [t("report.error", { message }), ...suggestion].join("\n") + trailing;
}

const SHAPES: Array<[RegExp, (m: RegExpExecArray) => [MessageId, MessageValues]]> = [
  [/^missing required argument '(.+)'$/, (m) => ["usage.missingArgument", { name: m[1]! }]],
  [/^option '(.+)' argument missing$/, (m) => ["usage.optionMissingArgument", { option: m[1]! }]],
  [/^required option '(.+)' not specified$/, (m) => ["usage.missingMandatoryOption", { option: m[1]! }]],
  [/^unknown option '(.+)'$/, (m) => ["usage.unknownOption", { option: m[1]! }]],
  [/^unknown command '(.+)'$/, (m) => ["usage.unknownCommand", { command: m[1]! }]],
  [/^too many arguments for '(.+)'\. Expected (\d+) arguments? but got (\d+)\.$/, (m) => ["usage.excessArgumentsFor", { command: m[1]!, expected: Number(m[2]), got: Number(m[3]) }]],
  [/^too many arguments\. Expected (\d+) arguments? but got (\d+)\.$/, (m) => ["usage.excessArguments", { expected: Number(m[1]), got: Number(m[2]) }]],
  [/^option '(.+)' argument '(.*)' is invalid\. ?(.*)$/s, (m) => ["usage.invalidArgument", { option: m[1]!, value: m[2]!, reason: m[3]! }]],
  [/^(option '.+'|environment variable '.+') cannot be used with (option '.+'|environment variable '.+')$/, (m) => ["usage.conflictingOption", { first: side(m[1]!), second: side(m[2]!) }]],
];

function translateMessage(message: string): string | undefined {
  for (const [re, build] of SHAPES) {
    const m = re.exec(message);
    if (m) {
      const [id, values] = build(m);
      return t(id, values);
    }
  }
  return undefined;
}

function side(text: string): string {
  const option = /^option '(.+)'$/.exec(text);
  if (option) return t("usage.option", { option: option[1]! });
  return t("usage.envVar", { name: /^environment variable '(.+)'$/.exec(text)![1]! });
}

function translateSuggestion(line: string): string {
  const many = /^\(Did you mean one of (.+)\?\)$/.exec(line);
  if (many) return t("usage.didYouMeanOneOf", { list: many[1]! });
  const one = /^\(Did you mean (.+)\?\)$/.exec(line);
  if (one) return t("usage.didYouMean", { suggestion: one[1]! });
  return line;
}
