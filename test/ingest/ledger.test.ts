import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GENESIS_HASH, appendAudit, auditLogIn, hashLine, verifyAuditLog } from "../../src/ingest/ledger.js";
import { isCandidateName } from "../../src/ingest/settle.js";
import { tmp } from "./helpers.js";

describe("audit ledger", () => {
  it("chains records: the first to the genesis hash, each next to the hash of the line before", async () => {
    const file = join(tmp(), "audit.jsonl");
    await appendAudit(file, { event: "a", n: 1 });
    await appendAudit(file, { event: "b", n: 2 });
    const lines = readFileSync(file, "utf8").trim().split("\n");
    expect(JSON.parse(lines[0]!).prev).toBe(GENESIS_HASH);
    expect(JSON.parse(lines[1]!).prev).toBe(hashLine(lines[0]!));
    const r = await verifyAuditLog(file);
    expect(r).toEqual({ ok: true, records: 2, head: hashLine(lines[1]!), keyed: false, checkpoint: "absent", broken: [] });
  });

  it("keeps the chain intact under 60 concurrent appends (lock file)", async () => {
    const file = join(tmp(), "audit.jsonl");
    await Promise.all(Array.from({ length: 60 }, (_, i) => appendAudit(file, { event: "x", i })));
    const r = await verifyAuditLog(file);
    expect(r.broken).toEqual([]);
    expect(r.records).toBe(60);
  });

  it("detects a changed, removed, inserted or garbled line", async () => {
    const file = join(tmp(), "audit.jsonl");
    for (let i = 0; i < 6; i++) await appendAudit(file, { event: "ready", id: `id${i}`, files: i });
    const lines = readFileSync(file, "utf8").trim().split("\n");
    const check = async (ls: string[]) => {
      const f = join(tmp(), "t.jsonl");
      writeFileSync(f, ls.join("\n") + "\n");
      return verifyAuditLog(f);
    };
    const changed = [...lines];
    changed[2] = changed[2]!.replace('"files":2', '"files":3');
    expect((await check(changed)).broken.map((b) => b.line)).toEqual([4]);
    const removed = lines.filter((_, i) => i !== 3);
    expect((await check(removed)).broken.map((b) => b.line)).toEqual([4]);
    const inserted = [...lines.slice(0, 2), lines[4]!, ...lines.slice(2)];
    expect((await check(inserted)).ok).toBe(false);
    const garbled = [...lines];
    garbled[5] = "{not json";
    expect((await check(garbled)).broken).toEqual([{ line: 6, reason: "not valid JSON" }]);
  });
});

describe("keyed audit log (HMAC key and head checkpoint in the state folder)", () => {
  /** A log of 5 records in a fresh state folder, and a way to recompute its chain as a forger without the key would. */
  async function keyedLog() {
    const state = tmp();
    const log = auditLogIn(state);
    for (let i = 0; i < 5; i++) await appendAudit(log, { event: "ready", id: `id${i}`, files: i });
    return { state, log, lines: readFileSync(log.file, "utf8").trim().split("\n") };
  }
  const rechain = (lines: string[]) => {
    let prev = GENESIS_HASH;
    return lines.map((l) => {
      const r = JSON.parse(l) as Record<string, unknown>;
      r.prev = prev;
      const out = JSON.stringify(r);
      prev = hashLine(out);
      return out;
    });
  };

  it("keys every line and checkpoints the head; the key is 0600", async () => {
    const { log } = await keyedLog();
    const r = await verifyAuditLog(log);
    expect(r).toMatchObject({ ok: true, records: 5, keyed: true, checkpoint: "match", broken: [] });
    expect(statSync(log.keyFile!).mode & 0o777).toBe(0o600);
    expect(statSync(log.file).mode & 0o077).toBe(0);
  });

  it("detects a log rewritten with its chain recomputed (no key): every rewritten line fails its HMAC", async () => {
    const { log, lines } = await keyedLog();
    const forged = rechain(lines.map((l) => l.replace('"files":2', '"files":7')));
    writeFileSync(log.file, forged.join("\n") + "\n");
    // The plain chain holds (that is what a forger achieves) ...
    expect((await verifyAuditLog(log.file)).ok).toBe(true);
    // ... the keyed check does not.
    const r = await verifyAuditLog(log);
    expect(r.ok).toBe(false);
    expect(r.broken.some((b) => b.line === 3 && /HMAC/.test(b.reason))).toBe(true);
  });

  it("detects a removed tail (the head checkpoint names more records)", async () => {
    const { log, lines } = await keyedLog();
    writeFileSync(log.file, lines.slice(0, 3).join("\n") + "\n");
    const r = await verifyAuditLog(log);
    expect(r.ok).toBe(false);
    expect(r.broken.map((b) => b.reason).join("\n")).toMatch(/tail was removed/);
  });

  it("a crash between appending a line and rewriting the checkpoint leaves a log that still verifies and chains on", async () => {
    const { log } = await keyedLog();
    const checkpoint = readFileSync(log.headFile!);
    await appendAudit(log, { event: "ready", id: "id5" });
    writeFileSync(log.headFile!, checkpoint); // as if killed right after the line was synced
    expect(await verifyAuditLog(log)).toMatchObject({ ok: true, records: 6 });
    await appendAudit(log, { event: "watch-started" });
    const r = await verifyAuditLog(log);
    expect(r).toMatchObject({ ok: true, records: 7, checkpoint: "match", broken: [] });
  });

  it("an append after a cut tail chains to the checkpoint, so the cut stays visible", async () => {
    const { log, lines } = await keyedLog();
    writeFileSync(log.file, lines.slice(0, 3).join("\n") + "\n");
    await appendAudit(log, { event: "after-cut" });
    const r = await verifyAuditLog(log);
    expect(r.ok).toBe(false);
    expect(r.broken.some((b) => b.line === 4 && /prev does not match/.test(b.reason))).toBe(true);
  });
});

describe("drop folder names", () => {
  it("takes only finished .zip names", () => {
    expect(isCandidateName("José Álvarez.zip")).toBe(true);
    expect(isCandidateName("X.ZIP")).toBe(true);
    for (const n of [".X.zip.partial", "X.zip.partial", "X.zip.part", ".X.zip", "~X.zip", "X.zip.tmp", "X.zip.sha256", "X.zip.crdownload", "audit.jsonl", "X.reason.json"]) {
      expect(isCandidateName(n), n).toBe(false);
    }
  });
});
