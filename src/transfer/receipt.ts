/** The receipt written beside a package after an upload: what `notify` reads. No secrets, no passwords. */
export interface Receipt {
  format: "scanbridge-receipt";
  formatVersion: 1;
  /** Local package file name, e.g. "José Álvarez.zip" (contains the patient name: PHI). */
  package: string;
  /** Destination without credentials, e.g. "sftp://jose@upload.example.org:22/incoming" or "file:///srv/outbox". */
  destination: string;
  /** Full remote path of the uploaded package. */
  remotePath: string;
  size: number;
  sha256: string;
  /** Whether the remote bytes were read back and hashed (--verify) or only the size checked. */
  verified: "size" | "sha256";
  attempts: number;
  resumedFrom?: number;
  startedAt: string;
  finishedAt: string;
  /** What happened: uploaded by a sender (default), or ingested / quarantined by `watch` at the hospital. */
  event?: "uploaded" | "ready" | "quarantined" | "forwarded";
  /** For "forwarded": what `watch --forward` delivered to the PACS and confirmed with QIDO-RS. */
  forward?: {
    instances: number;
    confirmed: number;
    durationMs: number;
    /** DICOMweb base URL without credentials. */
    pacs: string;
  };
  /** For "quarantined": the problem codes (no names). */
  problems?: string[];
  /** For "quarantined": each problem code with how many times it was found (no names). */
  problemCounts?: Record<string, number>;
  /** What to do about it (for staff; no names). */
  hint?: string;
  /** For packages taken by `watch`: how it was received (no names except readyRel, set only with --include-patient-name). */
  intake?: {
    unsealed?: boolean;
    nameEncoding?: { encoding: string; evidence: string; legacyNames: number };
    leftOut?: Record<string, number>;
    expandedArchives?: number;
    needsReview?: string[];
    patients?: number;
    studies?: number;
    readyRel?: string;
  };
  /** For "ready": package warnings staff must see (sender overrides, unchecked or damaged files); no names. */
  warnings?: string[];
  /** The package manifest's summary, copied so notify needs no access to the zip. */
  summary?: {
    files: number;
    byKind: Record<string, number>;
    studies?: Array<{ date?: string; description?: string; modalities: string[]; series: number; images: number }>;
  };
}

/** Receipt file name for a package file name: "X.zip" -> "X.receipt.json". */
export function receiptNameFor(packageFile: string): string {
  return packageFile.replace(/\.zip$/i, "") + ".receipt.json";
}
