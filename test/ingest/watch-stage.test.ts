/** The watch stage in-process: the notification hook and the outcome data the lead wires to `notify`. */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeHostilePackage, writeSmallPackage } from "../../fixtures/package-builder.js";
import { runWatch, type PackageOutcome, type WatchEvent } from "../../src/ingest/watcher.js";
import { ls, tmp } from "./helpers.js";

describe("runWatch", () => {
  it("calls onPackage once per package with what staff need, and returns the totals", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    await writeSmallPackage(drop, "Hook Ready");
    await writeHostilePackage(drop, "zip-slip", "Hook Hostile");
    const outcomes: PackageOutcome[] = [];
    const events: WatchEvent[] = [];
    const s = await runWatch(
      { drop, ready, settleSeconds: 0, concurrency: 2, once: true, allowUnsealed: false, limits: {}, auditNames: false, rescanSeconds: 30, giveUpSeconds: 3600, staleClaimSeconds: 120 },
      { signal: new AbortController().signal, onPackage: (o) => void outcomes.push(o), onEvent: (e) => void events.push(e) },
    );
    expect(s).toMatchObject({ ready: 1, quarantined: 1, requeued: 0, errors: 0 });
    const byResult = Object.fromEntries(outcomes.map((o) => [o.result, o]));
    expect(byResult.ready).toMatchObject({ file: "Hook Ready.zip", readyPath: join(ready, "Hook Ready"), sealed: true, problems: [] });
    expect(byResult.ready!.summary.root).toBe("Hook Ready");
    expect(byResult.ready!.id).toMatch(/^[0-9a-f]{12}$/);
    expect(byResult.quarantined).toMatchObject({ file: "Hook Hostile.zip", quarantinePath: join(home, "scanbridge-state", "quarantine", "Hook Hostile.zip") });
    expect(byResult.quarantined!.problems.map((p) => p.code)).toContain("PARENT_PATH");
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(["started", "claimed", "ready", "quarantined", "stopped"]));
    expect(ls(ready)).toEqual([".scanbridge-staging", "Hook Ready"]);
  });

  it("a failing onPackage hook does not lose the package", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    await writeSmallPackage(drop, "Hook Throws");
    const events: WatchEvent[] = [];
    const s = await runWatch(
      { drop, ready, settleSeconds: 0, concurrency: 1, once: true, allowUnsealed: false, limits: {}, auditNames: false, rescanSeconds: 30, giveUpSeconds: 3600, staleClaimSeconds: 120 },
      { signal: new AbortController().signal, onPackage: () => Promise.reject(new Error("smtp down")), onEvent: (e) => void events.push(e) },
    );
    expect(s.ready).toBe(1);
    expect(ls(ready)).toContain("Hook Throws");
    expect(events.some((e) => e.event === "error" && e.code === "ON_PACKAGE_FAILED")).toBe(true);
  });
});
