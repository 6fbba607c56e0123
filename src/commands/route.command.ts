import type { OptionDef } from "../config/options.js";
import type { CommandSpec } from "./types.js";

/** Routing rules, shared by `watch` (files packages by them) and `route test` (explains them). */
export const routingOptions: readonly OptionDef[] = [
  {
    key: "routes",
    description:
      "routing rules, in the config file only: a JSON array of { name, folder, match: { modality, bodyPart, studyDescription, referringClinic, kinds } }; the first matching rule files the package under ready/<folder>/",
    type: "json",
    env: false,
  },
  { key: "defaultRoute", flags: "--default-route <folder>", description: "with routes configured: folder under ready/ for packages no rule matches (default unrouted)", type: "string", env: "SCANBRIDGE_DEFAULT_ROUTE" },
];

const testExamples = ["scanbridge route test \"José Álvarez Núñez.zip\"", "scanbridge --config /etc/scanbridge/config.json route test /srv/ready/neuro/\"José Álvarez Núñez\" --json"];

/** `scanbridge route test <Name.zip | ready folder>`. */
export const routeTestSpec: CommandSpec = {
  name: "test",
  args: "<package>",
  summary: "show which routing rule a package (Name.zip or an extracted ready/ folder) matches, and why",
  options: routingOptions,
  examples: testExamples,
  load: async () => (await import("./route.js")).runRouteTestCommand,
};

/** `scanbridge route` (only `route test` for now). */
export const routeSpec: CommandSpec = {
  name: "route",
  summary: "routing rules of watch: check where a package would be filed",
  options: [],
  examples: testExamples,
  load: async () => (await import("./route.js")).runRouteHelpCommand,
  subcommands: [routeTestSpec],
};
