/**
 * Run `fn` over `items` with at most `limit` calls in flight, checking `signal` before each; calls `onDone` with
 * the number finished after each item (for progress). Rejects with the first error.
 */
export async function forEachConcurrent<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
  opts: { signal?: AbortSignal; onDone?: (done: number) => void; checkAbort?: (signal: AbortSignal | undefined) => void } = {},
): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      opts.checkAbort?.(opts.signal);
      await fn(items[next++]!);
      opts.onDone?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), Math.max(1, items.length)) }, worker));
}
