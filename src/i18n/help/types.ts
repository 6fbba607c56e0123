/**
 * Translations of --help: command summaries by command path ("send", "config show") and option descriptions by
 * option key, or "<command>.<key>" where one key means different things in two commands (pack --force, init --force).
 * The English is the command specs' own text; test/i18n/catalogs.test.ts checks every sender command is covered.
 */
export interface HelpCatalog {
  commands: Record<string, string>;
  options: Record<string, string>;
}
