/**
 * Run `fn` over `items` in order with at most `limit` calls in flight, checking `signal` (through `checkAbort`)
 * before each; calls `onDone` with the number finished after each item (for progress). The first failure (or
 * abort) stops new items; the calls still in flight are waited for, so nothing started here is still running when
 * this rejects, with that first error.
 */
export async function forEachConcurrent<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
  opts: { signal?: AbortSignal; onDone?: (done: number) => void; checkAbort?: (signal: AbortSignal | undefined) => void } = {},
): Promise<void> {
  let next = 0;
  let done = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      try {
        opts.checkAbort?.(opts.signal);
        await fn(items[next++]!);
        opts.onDone?.(++done);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), Math.max(1, items.length)) }, worker));
  if (failure) throw failure.error;
}
