import type { OptionDef, OptionsOf } from "../config/options.js";
import type { CommandSpec } from "./types.js";
import { stateOption } from "./watch.command.js";

/** The option table of `reconcile`. */
export const reconcileOptionTable = [
    { key: "patientId", flags: "--patient-id <id>", description: "local Patient ID (0010,0020)", type: "string", env: false, flagOnly: true },
    { key: "issuer", flags: "--issuer <issuer>", description: "Issuer of Patient ID (0010,0021), e.g. the hospital's assigning authority", type: "string", env: false, flagOnly: true },
    { key: "patientName", flags: "--patient-name <name>", description: "local Patient's Name (0010,0010) as FAMILY^GIVEN (optional; kept as received when not given)", type: "string", env: false, flagOnly: true },
    stateOption,
    { key: "accessionNumber", flags: "--accession-number <number>", description: "local Accession Number (0008,0050) (optional; without it the outside accession number is emptied, never forwarded as received)", type: "string", env: false, flagOnly: true },
  ] as const satisfies readonly OptionDef[];
/** The typed options `reconcile` receives. */
export type ReconcileCommandOptions = OptionsOf<typeof reconcileOptionTable>;

/** `scanbridge reconcile <ready folder>`: the local identity a package is forwarded under. */
export const reconcileSpec: CommandSpec<typeof reconcileOptionTable> = {
  name: "reconcile",
  args: "<folder>",
  summary:
    "give a package in ready/ its local identity (IHE Import Reconciliation): watch --forward sends its instances with this Patient ID, Issuer, name and Accession Number (emptied when none is given), the originals kept in Original Attributes Sequence; written into the watch's state folder (<state>/reconcile/<package id>.json); the files in ready/ are not changed",
  options: reconcileOptionTable,
  examples: ['scanbridge reconcile "/srv/ready/neuro/José Álvarez Núñez" --patient-id H123456 --issuer HOSP-A --patient-name "ALVAREZ NUNEZ^JOSE"'],
  load: async () => (await import("./reconcile.js")).runReconcileCommand,
};
