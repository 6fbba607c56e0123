// ESLint flat config (`npm run lint`, which first runs `tsc -p tsconfig.json` over src/, test/ and fixtures/).
// TypeScript: typescript-eslint's recommended type-aware rules (floating and misused promises, unused variables,
// unsafe `any` flows, ...). The plain .mjs/.js scripts (bench/, scripts/, bin/): ESLint's recommended rules.
// No formatting or naming rules: those would force rewrites without catching bugs.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Node's globals for the plain JavaScript files (TypeScript files get them from @types/node). */
const nodeGlobals = Object.fromEntries(
  [
    "process", "console", "Buffer", "URL", "URLSearchParams", "AbortController", "AbortSignal", "TextEncoder", "TextDecoder",
    "setTimeout", "clearTimeout", "setInterval", "clearInterval", "setImmediate", "clearImmediate", "queueMicrotask",
    "structuredClone", "performance", "fetch", "Response", "Request", "Headers",
  ].map((name) => [name, "readonly"]),
);

export default tseslint.config(
  { ignores: ["dist/**", "dist-fixtures/**", "node_modules/**", "coverage/**", ".bench-cache/**", "fixtures/sample/**", "outbox/**"] },
  { linterOptions: { reportUnusedDisableDirectives: "error" } },
  js.configs.recommended,
  { files: ["**/*.mjs", "**/*.js"], languageOptions: { globals: nodeGlobals } },
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true }],
      // Re-throwing or rejecting with a caught value (type unknown) passes the original error on unchanged.
      "@typescript-eslint/only-throw-error": ["error", { allowThrowingUnknown: true, allowThrowingAny: true }],
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true, allowThrowingAny: true }],
      // The code writes `xs[i]!` where noUncheckedIndexedAccess would require it; the rule would strip those.
      "@typescript-eslint/no-unnecessary-type-assertion": "off",
      // An async function without await is how a stub or a prompter meets a Promise-returning interface;
      // no-floating-promises and no-misused-promises catch the real mistakes.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    // Tests read the CLI's --json output through JSON.parse (type any) and check it with expect(); typing every
    // parsed document would add nothing the assertions do not already check.
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
    },
  },
);
