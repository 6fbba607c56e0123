import { listForwardQueue } from "../../src/forward/queue.js";
import { until } from "../ingest/helpers.js";

/** Wait until a package in the forward queue of `stateDir` is due again (its retry delay passed): no fixed sleep. */
export async function untilForwardDue(stateDir: string, timeoutMs = 30_000): Promise<void> {
  await until(async () => (await listForwardQueue(stateDir, true)).length > 0, timeoutMs, "a queued package to be due for another attempt");
}
