// The bounded pool the Vault reads and mount lookups run in (`concurrency` of them at a time).
/**
 * Runs `fn` over `items` with at most `limit` in flight; results keep the input order. After the
 * first failure no new item starts, but those in flight are waited for before it is thrown: a read
 * already sent may be issuing a lease, and its answer must be seen (and the lease recorded) before
 * the caller closes the connections under it.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  // Below 1 no worker would start and the results would come back empty: a bug in the caller.
  if (!(limit >= 1)) throw new RangeError(`mapLimit: the limit must be at least 1 (got ${limit})`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  async function worker(): Promise<void> {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (error) {
        // Stop handing out work: all or nothing, and no point loading Vault further.
        failure ??= { error };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
  if (failure !== undefined) throw failure.error;
  return results;
}
