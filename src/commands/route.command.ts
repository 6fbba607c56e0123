import type { OptionDef, OptionsOf } from "../config/options.js";
import type { CommandSpec } from "./types.js";

/** Routing rules, shared by `watch` (files packages by them) and `route test` (explains them). */
export const routingOptions = [
  {
    key: "routes",
    description:
      "routing rules, in the config file only: a JSON array of { name, folder, match: { modality, bodyPart, studyDescription, referringClinic, kinds } }; the first matching rule files the package under ready/<folder>/",
    type: "json",
    env: false,
  },
  { key: "defaultRoute", flags: "--default-route <folder>", description: "with routes configured: folder under ready/ for packages no rule matches (default unrouted)", type: "string", env: "SCANBRIDGE_DEFAULT_ROUTE" },
] as const satisfies readonly OptionDef[];

const testExamples = ["scanbridge route test \"José Álvarez Núñez.zip\"", "scanbridge --config /etc/scanbridge/config.json route test /srv/ready/neuro/\"José Álvarez Núñez\" --json"];

/** The option table of `routeTest`. */
export const routeTestOptionTable = routingOptions;
/** The typed options `routeTest` receives. */
export type RouteTestCommandOptions = OptionsOf<typeof routeTestOptionTable>;

/** `scanbridge route test <Name.zip | ready folder>`. */
export const routeTestSpec: CommandSpec<typeof routeTestOptionTable> = {
  name: "test",
  args: "<package>",
  summary: "show which routing rule a package (Name.zip or an extracted ready/ folder) matches, and why",
  options: routeTestOptionTable,
  examples: testExamples,
  load: async () => (await import("./route.js")).runRouteTestCommand,
};

/** `scanbridge route` (only `route test` for now). */
export const routeSpec: CommandSpec<readonly []> = {
  name: "route",
  summary: "routing rules of watch: check where a package would be filed",
  options: [],
  examples: testExamples,
  load: async () => (await import("./route.js")).runRouteHelpCommand,
  subcommands: [routeTestSpec],
};
