import type { OptionDef } from "../config/options.js";

/** Forwarding to a PACS over DICOMweb: options of `watch` (not a command of its own). */
export const forwardOptions: readonly OptionDef[] = [
  { key: "forward", flags: "--forward <url>", description: "after verification, send every DICOM instance to this DICOMweb service (STOW-RS) and confirm each with QIDO-RS, e.g. https://pacs.hospital.example/dicom-web", type: "string", env: "SCANBRIDGE_WATCH_FORWARD" },
  { key: "forwardUser", flags: "--forward-user <name>", description: "user name for HTTP basic authentication at the PACS (password in SCANBRIDGE_FORWARD_PASSWORD)", type: "string", env: "SCANBRIDGE_FORWARD_USER" },
  { key: "forwardPassword", description: "password for HTTP basic authentication at the PACS", type: "string", env: "SCANBRIDGE_FORWARD_PASSWORD", secret: true },
  { key: "forwardToken", description: "bearer token for the PACS (instead of user and password)", type: "string", env: "SCANBRIDGE_FORWARD_TOKEN", secret: true },
  { key: "forwardCa", flags: "--forward-ca <file>", description: "extra trusted CA certificates (PEM) for the PACS; certificates are always verified", type: "string", env: "SCANBRIDGE_FORWARD_CA" },
  { key: "forwardBatch", flags: "--forward-batch <n>", description: "DICOM instances per STOW-RS request", type: "number", env: "SCANBRIDGE_FORWARD_BATCH", default: 50, min: 1, max: 1000 },
  { key: "forwardRetry", flags: "--forward-retry <seconds>", description: "first wait before a package the PACS did not take is tried again; doubles per attempt up to 1 hour", type: "duration", env: "SCANBRIDGE_FORWARD_RETRY", default: "30s", min: 1 },
];
