import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { InputError, UsageError } from "../errors.js";
import { decideRoute, parseRouting, readRoutingFacts, readRoutingFactsFromZip, type RouteDecision, type RoutingConfig, type RoutingFacts } from "../ingest/routing.js";
import type { OptionsOf } from "../config/options.js";
import type { routingOptions, RouteTestCommandOptions } from "./route.command.js";
import type { CommandContext, CommandOutput } from "./types.js";

/** The routing configuration from resolved options (`routes`, `defaultRoute`); undefined when no routes are configured. */
export function routingFrom(options: OptionsOf<typeof routingOptions>): RoutingConfig | undefined {
  return parseRouting(options.routes, options.defaultRoute);
}

/** Run `scanbridge route test <Name.zip | ready folder>`: which rule matches, and why each rule did or did not. */
export async function runRouteTestCommand(ctx: CommandContext<RouteTestCommandOptions>): Promise<CommandOutput> {
  const arg = ctx.args[0];
  if (!arg) throw new UsageError("MISSING_PACKAGE", "route test needs a package: Name.zip or a folder in ready/");
  const cfg = routingFrom(ctx.options);
  if (!cfg) {
    throw new UsageError("NO_ROUTES", "No routing rules are configured (routes in the config file)", {
      hint: "Add a \"routes\" array to the config file, or pass it with --config FILE. See README: routing rules.",
    });
  }
  const path = resolve(ctx.cwd, arg);
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new InputError("PACKAGE_NOT_FOUND", "Package not found", { privateLines: [path], hint: "Give a Name.zip or an extracted folder in ready/." });
  const facts = st.isDirectory() ? await readRoutingFacts(path) : await readRoutingFactsFromZip(path);
  const d = decideRoute(cfg, facts);
  return { data: { route: d.route, folder: d.folder, default: d.isDefault, reason: d.reason, rules: d.evaluations, facts: factsForOutput(facts) }, human: describeDecision(d, facts) };
}

/** `scanbridge route` alone: point at the sub-command. */
export async function runRouteHelpCommand(): Promise<CommandOutput> {
  throw new UsageError("MISSING_SUBCOMMAND", "Use: scanbridge route test <Name.zip | ready folder>");
}

/** What the package showed routing, without patient identity (no names, no IDs). */
function factsForOutput(f: RoutingFacts): Record<string, unknown> {
  return { sealed: f.sealed, modalities: f.modalities, bodyParts: f.bodyParts, studyDescriptions: f.studyDescriptions, institutions: f.institutions, referringPhysicians: f.referringPhysicians, kinds: f.kinds, unreadableHeaders: f.unreadable };
}

/** Human lines: the decision, then every rule with each condition's verdict. */
function describeDecision(d: RouteDecision, f: RoutingFacts): string[] {
  const lines = [d.isDefault ? `route: default → ready/${d.folder}/ (${d.reason})` : `route: ${d.route} → ready/${d.folder}/ (${d.reason})`];
  if (!f.sealed) return lines;
  for (const e of d.evaluations) {
    lines.push(`  ${e.matched ? "✓" : "✗"} ${e.name} (ready/${e.folder}/)`);
    for (const c of e.checks) {
      const want = Array.isArray(c.want) ? c.want.join(" | ") : `/${c.want}/i`;
      lines.push(`      ${c.ok ? "✓" : "✗"} ${c.field}: wants ${want}; package has ${c.got.length ? c.got.join(", ") : "none"}`);
    }
  }
  if (f.unreadable) lines.push(`  note: ${f.unreadable} DICOM header(s) could not be read`);
  return lines;
}
