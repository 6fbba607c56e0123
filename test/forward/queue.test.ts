/** The forward queue: idempotent, crash-safe bookkeeping (no PACS needed). */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildDicom } from "../../fixtures/dicom-builder.js";
import { enqueueForward, forwardDirs, forwardOne, instancesOf, listForwardQueue } from "../../src/forward/queue.js";
import { removeDir, testdir } from "../helpers/cli.js";

const ID = "0123456789ab";
const opts = { target: { url: "http://127.0.0.1:1/dicom-web" }, batchSize: 10, retryDelayMs: 1000, maxRetryDelayMs: 60_000 };

describe("forward queue", () => {
  it("queues a package once; a delivered package is never queued again", async () => {
    const drop = testdir({}, "sb-fwq-");
    expect(await enqueueForward(drop, { id: ID, sha256: "a".repeat(64), readyPath: "/x" })).toBe(true);
    expect(await enqueueForward(drop, { id: ID, sha256: "a".repeat(64), readyPath: "/x" })).toBe(false);
    expect((await listForwardQueue(drop)).map((e) => e.id)).toEqual([ID]);
    // Delivered, then stopped before the queue entry was removed: the entry is dropped, not sent again.
    writeFileSync(join(forwardDirs(drop).done, `${ID}.json`), "{}");
    expect(await listForwardQueue(drop)).toEqual([]);
    expect(existsSync(join(forwardDirs(drop).queue, `${ID}.json`))).toBe(false);
    expect(await enqueueForward(drop, { id: ID, sha256: "a".repeat(64), readyPath: "/x" })).toBe(false);
    removeDir(drop);
  });

  it("a package without manifest is set aside (skipped), not retried forever", async () => {
    const drop = testdir({}, "sb-fwq-");
    const ready = join(drop, "ready", "Unsealed");
    mkdirSync(ready, { recursive: true });
    await enqueueForward(drop, { id: ID, sha256: "b".repeat(64), readyPath: ready });
    const [entry] = await listForwardQueue(drop);
    const a = await forwardOne(drop, entry!, opts, new AbortController().signal);
    expect(a).toMatchObject({ result: "skipped", id: ID });
    expect(await listForwardQueue(drop)).toEqual([]);
    expect(readdirSync(forwardDirs(drop).done)).toEqual([`${ID}.json`]);
    removeDir(drop);
  });

  it("a hand-made package is forwarded from the watcher's own intake manifest", async () => {
    const drop = testdir({}, "sb-fwq-");
    const ready = join(drop, "ready", "Handmade");
    mkdirSync(join(ready, "CT"), { recursive: true });
    writeFileSync(join(ready, "CT", "img1"), buildDicom({ studyInstanceUid: "1.2.3.7", seriesInstanceUid: "1.2.3.7.1", sopInstanceUid: "1.2.3.7.1.1", pixelDataBytes: 16 }));
    writeFileSync(join(ready, "letter.pdf"), "%PDF-1.4\n");
    const files = [
      { path: "CT/img1", size: 1, sha256: "c".repeat(64), kind: "dicom" },
      { path: "letter.pdf", size: 1, sha256: "d".repeat(64), kind: "document" },
    ];
    writeFileSync(join(ready, "scanbridge-intake.json"), JSON.stringify({ format: "scanbridge-intake", files }));
    expect(await instancesOf(ready)).toEqual([{ path: join(ready, "CT", "img1"), studyInstanceUid: "1.2.3.7", seriesInstanceUid: "1.2.3.7.1", sopInstanceUid: "1.2.3.7.1.1" }]);
    // Not the watcher's format: nothing is taken from it.
    writeFileSync(join(ready, "scanbridge-intake.json"), JSON.stringify({ format: "something-else", files }));
    expect(await instancesOf(ready)).toBeUndefined();
    removeDir(drop);
  });

  it("headers already read by the page are handed on, not read again; the others are read from the files", async () => {
    const drop = testdir({}, "sb-fwq-");
    const ready = join(drop, "ready", "Sealed");
    mkdirSync(join(ready, "CT"), { recursive: true });
    writeFileSync(join(ready, "CT", "img1"), buildDicom({ studyInstanceUid: "1.2.3.8", seriesInstanceUid: "1.2.3.8.1", sopInstanceUid: "1.2.3.8.1.1", pixelDataBytes: 16 }));
    // Not readable as DICOM on disk: only the header handed on can name it, so reading it again would fail.
    writeFileSync(join(ready, "CT", "img2"), "not read again");
    const files = [
      { path: "CT/img1", size: 1, sha256: "c".repeat(64), kind: "dicom" },
      { path: "CT/img2", size: 1, sha256: "d".repeat(64), kind: "dicom" },
    ];
    writeFileSync(join(ready, "manifest.json"), JSON.stringify({ format: "scanbridge-package", files }));
    const known = new Map([["CT/img2", { relPath: "CT/img2", studyInstanceUid: "1.2.3.8", seriesInstanceUid: "1.2.3.8.1", sopInstanceUid: "1.2.3.8.1.2" }]]);
    expect(await instancesOf(ready, known)).toEqual([
      { path: join(ready, "CT", "img1"), studyInstanceUid: "1.2.3.8", seriesInstanceUid: "1.2.3.8.1", sopInstanceUid: "1.2.3.8.1.1" },
      { path: join(ready, "CT", "img2"), studyInstanceUid: "1.2.3.8", seriesInstanceUid: "1.2.3.8.1", sopInstanceUid: "1.2.3.8.1.2" },
    ]);
    // Without them every header is read from its file.
    await expect(instancesOf(ready)).rejects.toThrow();
    removeDir(drop);
  });

  it("a PACS that cannot be reached: stays queued, the attempt counted, the next attempt backed off (doubling)", async () => {
    const dicom = buildDicom({ studyInstanceUid: "1.2.3.9", seriesInstanceUid: "1.2.3.9.1", sopInstanceUid: "1.2.3.9.1.1", pixelDataBytes: 16 });
    const manifest = { format: "scanbridge-package", formatVersion: 1, root: "P", files: [{ path: "IM1", size: dicom.length, sha256: "0".repeat(64), kind: "dicom" }, { path: "r.pdf", size: 1, sha256: "0".repeat(64), kind: "document" }] };
    const drop = testdir({ "ready/P/manifest.json": JSON.stringify(manifest), "ready/P/IM1": dicom, "ready/P/r.pdf": "x" }, "sb-fwq-");
    await enqueueForward(drop, { id: ID, sha256: "c".repeat(64), readyPath: join(drop, "ready", "P") });
    const down = { ...opts, requestRetry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } };
    const first = await forwardOne(drop, (await listForwardQueue(drop))[0]!, down, new AbortController().signal);
    expect(first).toMatchObject({ result: "queued", id: ID, code: "NETWORK_TRANSIENT", retryable: true, attempts: 1, nextAttemptInMs: 1000 });
    expect(await listForwardQueue(drop, true)).toEqual([]); // not due yet
    const [entry] = await listForwardQueue(drop);
    expect(entry).toMatchObject({ attempts: 1, lastError: { code: "NETWORK_TRANSIENT" } });
    const second = await forwardOne(drop, entry!, down, new AbortController().signal);
    expect(second).toMatchObject({ result: "queued", attempts: 2, nextAttemptInMs: 2000 });
    removeDir(drop);
  });

  it("a package with no DICOM instances is set aside, not sent", async () => {
    const drop = testdir({ "ready/P/manifest.json": JSON.stringify({ format: "scanbridge-package", formatVersion: 1, root: "P", files: [] }) }, "sb-fwq-");
    await enqueueForward(drop, { id: ID, sha256: "c".repeat(64), readyPath: join(drop, "ready", "P") });
    const a = await forwardOne(drop, (await listForwardQueue(drop))[0]!, opts, new AbortController().signal);
    expect(a).toMatchObject({ result: "skipped", why: "the package holds no DICOM instances" });
    removeDir(drop);
  });

  it("a torn or edited entry is reported once and set aside in damaged/, never skipped silently on every pass", async () => {
    const state = testdir({}, "sb-fwq-");
    await enqueueForward(state, { id: ID, sha256: "d".repeat(64), readyPath: "/x" });
    writeFileSync(join(forwardDirs(state).queue, "abcdefabcdef.json"), '{"format":"scanbridge-forward","id":"abc');
    const damaged: string[] = [];
    expect((await listForwardQueue(state, false, Date.now(), (n, err) => damaged.push(`${n} ${err.code}`))).map((e) => e.id)).toEqual([ID]);
    expect(damaged).toEqual(["abcdefabcdef.json STATE_DAMAGED"]);
    expect(readdirSync(forwardDirs(state).damaged)).toEqual(["abcdefabcdef.json"]);
    await listForwardQueue(state, false, Date.now(), (n) => damaged.push(n));
    expect(damaged).toHaveLength(1);
    removeDir(state);
  });
});
