import type { OptionDef } from "../config/options.js";

/** Forwarding to a PACS over DICOMweb: options of `watch` (not a command of its own). */
export const forwardOptions = [
  { key: "forward", flags: "--forward <url>", description: "after verification, send every DICOM instance to this DICOMweb service (STOW-RS) and confirm each with QIDO-RS, e.g. https://pacs.hospital.example/dicom-web", type: "string", env: "SCANBRIDGE_WATCH_FORWARD" },
  { key: "forwardUser", flags: "--forward-user <name>", description: "user name for HTTP basic authentication at the PACS (password in SCANBRIDGE_FORWARD_PASSWORD)", type: "string", env: "SCANBRIDGE_FORWARD_USER" },
  { key: "forwardPassword", description: "password for HTTP basic authentication at the PACS", type: "string", env: "SCANBRIDGE_FORWARD_PASSWORD", secret: true },
  { key: "forwardToken", description: "bearer token for the PACS (instead of user and password)", type: "string", env: "SCANBRIDGE_FORWARD_TOKEN", secret: true },
  { key: "forwardCa", flags: "--forward-ca <file>", description: "extra trusted CA certificates (PEM) for the PACS; certificates are always verified", type: "string", env: "SCANBRIDGE_FORWARD_CA" },
  { key: "forwardBatch", flags: "--forward-batch <n>", description: "DICOM instances per STOW-RS request", type: "number", env: "SCANBRIDGE_FORWARD_BATCH", default: 50, min: 1, max: 1000 },
  { key: "requireReconcile", flags: "--require-reconcile", description: "forward only packages with a local identity (scanbridge reconcile, or --reconcile-map); others stay queued (NOT_RECONCILED). Already the default without --forward-unreconciled: the flag states it (and refuses --forward-unreconciled); false is refused, since it would not forward anything more", type: "boolean", env: "SCANBRIDGE_REQUIRE_RECONCILE" },
  { key: "reconcileMap", flags: "--reconcile-map <file>", description: "JSON map of local identities, keyed by package id (first 12 hex of the SHA-256) or source Patient ID: { patientId, issuer, patientName? }; implies --require-reconcile; read again at every attempt", type: "string", env: "SCANBRIDGE_RECONCILE_MAP" },
  { key: "forwardUnreconciled", flags: "--forward-unreconciled", description: "forward packages that have no local identity as received (outside patient IDs enter the PACS) instead of keeping them queued", type: "boolean", env: "SCANBRIDGE_FORWARD_UNRECONCILED", default: false },
  { key: "forwardRetry", flags: "--forward-retry <seconds>", description: "first wait before a package the PACS did not take is tried again; doubles per attempt up to 1 hour", type: "duration", env: "SCANBRIDGE_FORWARD_RETRY", default: "30s", min: 1 },
] as const satisfies readonly OptionDef[];
