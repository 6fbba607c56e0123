import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import { NetworkError, RemoteVerificationError, UsageError } from "../errors.js";
import { defaultRetryPolicy, toNetworkError, withRetries, type RetryPolicy } from "../transfer/retry.js";

/** A DICOMweb service (the base URL before /studies) and how to log in. TLS certificates are always verified. */
export interface DicomwebTarget {
  /** Base URL, e.g. https://pacs.hospital.example/dicom-web (no trailing slash needed). */
  url: string;
  auth?: { kind: "basic"; user: string; password: string } | { kind: "bearer"; token: string };
  /** Extra trusted CA certificates (PEM), for a hospital's own CA. Verification itself cannot be turned off. */
  ca?: string | Buffer;
  /** Per-request inactivity timeout. */
  timeoutMs?: number;
}

/** One DICOM instance to send: its file and the UIDs it must be found under afterwards. */
export interface InstanceRef {
  path: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

/** Options of stowInstances. */
export interface StowOptions {
  /** Most instances per STOW-RS request (default 50). */
  batchSize?: number;
  /** Most bytes per request: a batch is cut earlier when it would pass this (default 16 MB). */
  batchBytes?: number;
  /** STOW-RS requests in flight at once (default 3; each on its own keep-alive connection). */
  parallel?: number;
  retry?: RetryPolicy;
  signal?: AbortSignal;
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
  onBatch?: (info: { sent: number; total: number }) => void;
  /** Called once every instance of a series has been stored (its batches answered): confirmation can start. */
  onSeriesStored?: (study: string, series: string) => void;
}

/** What a STOW-RS run did. */
export interface StowResult {
  sent: number;
  requests: number;
  attempts: number;
  /** SOP Instance UIDs the server reported as failed (FailedSOPSequence). */
  failed: string[];
}

/** Check and normalise a DICOMweb base URL: http(s) only, no credentials in the URL. */
export function parseDicomwebUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError("FORWARD_URL_INVALID", `Not a DICOMweb URL: ${raw}`, { hint: "Use e.g. https://pacs.hospital.example/dicom-web" });
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw new UsageError("FORWARD_URL_INVALID", `DICOMweb URLs are http(s)://, not ${u.protocol}//`);
  if (u.username || u.password) throw new UsageError("FORWARD_URL_CREDENTIALS", "Do not put credentials in the DICOMweb URL", { hint: "Use SCANBRIDGE_FORWARD_USER/SCANBRIDGE_FORWARD_PASSWORD or SCANBRIDGE_FORWARD_TOKEN." });
  u.pathname = u.pathname.replace(/\/+$/, "");
  return u;
}

const CRLF = "\r\n";

/** Keep-alive agents shared by the parallel requests (one connection per request in flight). */
const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 8 }), https: new https.Agent({ keepAlive: true, maxSockets: 8 }) };

/**
 * Send instances with STOW-RS: multipart/related; type="application/dicom", in batches cut by count and by bytes,
 * `parallel` requests in flight, each file streamed from disk (Content-Length computed up front). A failed request
 * is retried with backoff when retryable (network errors, 408/429/5xx); 401/403 and other 4xx are not, and stop
 * the run. Re-sending an instance the server already holds is harmless.
 */
export async function stowInstances(target: DicomwebTarget, instances: readonly InstanceRef[], opts: StowOptions = {}): Promise<StowResult> {
  const batchSize = Math.max(1, opts.batchSize ?? 50);
  const batchBytes = Math.max(1, opts.batchBytes ?? 16e6);
  const parallel = Math.max(1, Math.min(8, opts.parallel ?? 3));
  const sizes = await Promise.all(instances.map(async (i) => (await stat(i.path)).size));
  const batches: Array<{ start: number; end: number }> = [];
  for (let start = 0; start < instances.length; ) {
    let end = start + 1;
    let bytes = sizes[start]!;
    while (end < instances.length && end - start < batchSize && bytes + sizes[end]! <= batchBytes) bytes += sizes[end++]!;
    batches.push({ start, end });
    start = end;
  }
  // Series complete when all their instances' batches are answered.
  const seriesKey = (i: InstanceRef) => `${i.studyInstanceUid}\0${i.seriesInstanceUid}`;
  const pendingBySeries = new Map<string, number>();
  for (const i of instances) pendingBySeries.set(seriesKey(i), (pendingBySeries.get(seriesKey(i)) ?? 0) + 1);
  const result: StowResult = { sent: 0, requests: 0, attempts: 0, failed: [] };
  let next = 0;
  let stop: { error: unknown } | undefined;
  const worker = async () => {
    while (stop === undefined && next < batches.length) {
      const { start, end } = batches[next++]!;
      const batch = instances.slice(start, end);
      try {
        const { value, attempts } = await withRetries(() => postBatch(target, batch, sizes.slice(start, end), opts.signal), { policy: opts.retry ?? defaultRetryPolicy, signal: opts.signal, onRetry: opts.onRetry });
        result.requests++;
        result.attempts += attempts;
        result.sent += batch.length;
        result.failed.push(...value);
      } catch (err) {
        stop ??= { error: err };
        return;
      }
      opts.onBatch?.({ sent: result.sent, total: instances.length });
      for (const i of batch) {
        const k = seriesKey(i);
        const left = pendingBySeries.get(k)! - 1;
        pendingBySeries.set(k, left);
        if (left === 0) opts.onSeriesStored?.(i.studyInstanceUid, i.seriesInstanceUid);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, batches.length) }, worker));
  if (stop) throw stop.error;
  return result;
}

/**
 * STOW-RS then QIDO-RS, overlapped: each series is confirmed as soon as all its instances are stored, while the
 * other series are still being sent.
 */
export async function stowAndConfirm(target: DicomwebTarget, instances: readonly InstanceRef[], opts: StowOptions & { pageSize?: number } = {}): Promise<{ stow: StowResult; confirm: ConfirmResult }> {
  const confirms: Array<Promise<ConfirmResult>> = [];
  const bySeries = new Map<string, InstanceRef[]>();
  for (const i of instances) {
    const k = `${i.studyInstanceUid}\0${i.seriesInstanceUid}`;
    bySeries.set(k, [...(bySeries.get(k) ?? []), i]);
  }
  const stow = await stowInstances(target, instances, {
    ...opts,
    onSeriesStored: (study, series) => {
      opts.onSeriesStored?.(study, series);
      const p = confirmInstances(target, bySeries.get(`${study}\0${series}`) ?? [], { retry: opts.retry, signal: opts.signal, pageSize: opts.pageSize });
      p.catch(() => {}); // awaited below
      confirms.push(p);
    },
  }).catch(async (err: unknown) => {
    await Promise.allSettled(confirms);
    throw err;
  });
  const parts = await Promise.all(confirms);
  return { stow, confirm: { confirmed: parts.reduce((a, c) => a + c.confirmed, 0), missing: parts.flatMap((c) => c.missing) } };
}

/** POST one STOW-RS request; returns the SOP Instance UIDs the server reports as failed. */
async function postBatch(target: DicomwebTarget, batch: readonly InstanceRef[], sizes: readonly number[], signal?: AbortSignal): Promise<string[]> {
  const boundary = `scanbridge-${randomBytes(16).toString("hex")}`;
  const partHead = Buffer.from(`--${boundary}${CRLF}Content-Type: application/dicom${CRLF}${CRLF}`);
  const partTail = Buffer.from(CRLF);
  const closing = Buffer.from(`--${boundary}--${CRLF}`);
  const length = sizes.reduce((s, n) => s + partHead.length + n + partTail.length, 0) + closing.length;
  async function* body() {
    for (const [k, inst] of batch.entries()) {
      yield partHead;
      // Read buffers sized to the file (at most 1 MiB): a 1 MiB buffer for every 0.5 MB instance was most of the
      // forward's garbage collection.
      const highWaterMark = Math.min(1 << 20, Math.max(64 * 1024, sizes[k]!));
      for await (const chunk of createReadStream(inst.path, { highWaterMark })) yield chunk as Buffer;
      yield partTail;
    }
    yield closing;
  }
  const res = await request(target, "POST", "/studies", {
    headers: { "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`, "Content-Length": String(length), Accept: "application/dicom+json" },
    body: Readable.from(body()),
    signal,
  });
  if (res.status === 200 || res.status === 202 || res.status === 409) {
    const failed = failedSops(res.body);
    // 409: nothing stored. The server said why in FailedSOPSequence; without it, every instance of the batch failed.
    if (res.status === 409 && failed.length === 0) return batch.map((b) => b.sopInstanceUid);
    return failed;
  }
  throw httpError("STOW-RS", res.status);
}

/** SOP Instance UIDs in a STOW-RS response's Failed SOP Sequence (0008,1198). */
function failedSops(body: Buffer): string[] {
  try {
    const j = JSON.parse(body.toString("utf8")) as Record<string, { Value?: Array<Record<string, { Value?: string[] }>> }>;
    return (j["00081198"]?.Value ?? []).map((item) => item["00081155"]?.Value?.[0]).filter((x): x is string => typeof x === "string");
  } catch {
    return [];
  }
}

/** Options of confirmInstances. */
export interface ConfirmOptions {
  retry?: RetryPolicy;
  signal?: AbortSignal;
  /** Results per QIDO-RS page (default 1000). */
  pageSize?: number;
}

/** What QIDO-RS found. */
export interface ConfirmResult {
  confirmed: number;
  /** SOP Instance UIDs the server does not list. */
  missing: string[];
}

/**
 * Ask the server with QIDO-RS, series by series (paged with limit/offset), which of the instances it holds.
 * Every instance must be listed under its study and series to count as delivered.
 */
export async function confirmInstances(target: DicomwebTarget, instances: readonly InstanceRef[], opts: ConfirmOptions = {}): Promise<ConfirmResult> {
  const bySeries = new Map<string, { study: string; series: string; sops: Set<string> }>();
  for (const i of instances) {
    const k = `${i.studyInstanceUid}\0${i.seriesInstanceUid}`;
    const e = bySeries.get(k) ?? { study: i.studyInstanceUid, series: i.seriesInstanceUid, sops: new Set<string>() };
    e.sops.add(i.sopInstanceUid);
    bySeries.set(k, e);
  }
  const pageSize = Math.max(1, opts.pageSize ?? 1000);
  const missing: string[] = [];
  let confirmed = 0;
  for (const { study, series, sops } of bySeries.values()) {
    const found = new Set<string>();
    for (let offset = 0; ; offset += pageSize) {
      const path = `/studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}/instances?includefield=00080018&limit=${pageSize}&offset=${offset}`;
      const { value: page } = await withRetries(
        async () => {
          const res = await request(target, "GET", path, { headers: { Accept: "application/dicom+json" }, signal: opts.signal });
          if (res.status === 204 || res.status === 404) return [] as string[];
          if (res.status !== 200) throw httpError("QIDO-RS", res.status);
          const list = JSON.parse(res.body.toString("utf8")) as Array<Record<string, { Value?: string[] }>>;
          if (!Array.isArray(list)) throw new RemoteVerificationError("QIDO_INVALID", "QIDO-RS answer is not a JSON array");
          return list.map((x) => x["00080018"]?.Value?.[0]).filter((x): x is string => typeof x === "string");
        },
        { policy: opts.retry ?? defaultRetryPolicy, signal: opts.signal },
      );
      for (const s of page) found.add(s);
      if (page.length < pageSize) break;
    }
    for (const s of sops) {
      if (found.has(s)) confirmed++;
      else missing.push(s);
    }
  }
  return { confirmed, missing };
}

/** An HTTP status as a typed error: retryable for 408, 429 and 5xx; 401/403 (fatal: every package would meet them) say to check the credentials. */
function httpError(what: string, status: number): NetworkError {
  if (status === 401 || status === 403) {
    return new NetworkError("FORWARD_AUTH_FAILED", `${what}: the PACS refused the login (HTTP ${status})`, { hint: "Check SCANBRIDGE_FORWARD_USER/SCANBRIDGE_FORWARD_PASSWORD or SCANBRIDGE_FORWARD_TOKEN.", retryClass: "fatal" });
  }
  const retryable = status === 408 || status === 429 || status >= 500;
  return new NetworkError(retryable ? "FORWARD_SERVER_ERROR" : "FORWARD_REJECTED", `${what}: the PACS answered HTTP ${status}`, { retryable });
}

/** One HTTP(S) request; the whole answer is read (DICOMweb JSON answers are small). */
function request(
  target: DicomwebTarget,
  method: "GET" | "POST",
  path: string,
  o: { headers: Record<string, string>; body?: Readable; signal?: AbortSignal },
): Promise<{ status: number; body: Buffer }> {
  const base = parseDicomwebUrl(target.url);
  const [p, q] = path.split("?") as [string, string | undefined];
  const url = new URL(base.href);
  url.pathname = `${base.pathname.replace(/\/+$/, "")}${p}`;
  url.search = q ? `?${q}` : "";
  const headers: Record<string, string> = { ...o.headers, "User-Agent": "scanbridge" };
  if (target.auth?.kind === "basic") headers.Authorization = `Basic ${Buffer.from(`${target.auth.user}:${target.auth.password}`).toString("base64")}`;
  if (target.auth?.kind === "bearer") headers.Authorization = `Bearer ${target.auth.token}`;
  const lib = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { method, headers, signal: o.signal, agent: url.protocol === "https:" && !target.ca ? agents.https : url.protocol === "https:" ? undefined : agents.http, timeout: target.timeoutMs ?? 60_000, ...(url.protocol === "https:" ? { rejectUnauthorized: true, ...(target.ca ? { ca: target.ca } : {}) } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on("error", (err) => reject(toNetworkError(err, "PACS")));
    });
    req.on("timeout", () => req.destroy(new NetworkError("NETWORK_TRANSIENT", "PACS: timed out", { retryClass: "retry", details: { errno: "ETIMEDOUT" } })));
    req.on("error", (err) => reject(o.signal?.aborted ? err : toNetworkError(err, "PACS")));
    if (o.body) {
      o.body.on("error", (err) => req.destroy(err));
      o.body.pipe(req);
    } else req.end();
  });
}
