/**
 * Bounded concurrency for background and operator work over many
 * repositories (the verifier's sweep, `githa verify`, `githa inventory --all`):
 * enough at once to hide each backend round trip's latency, few enough not
 * to flood the backends (docs/architecture.md "Verified copies").
 */

/**
 * Runs `work` for each item, at most `limit` at once, in order of the items;
 * the first failure stops new work and is thrown once the running ones ended.
 */
export async function boundedEach<T>(items: AsyncIterable<readonly T[]>, limit: number, work: (item: T) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  outer: for await (const page of items) {
    for (const item of page) {
      if (failure || stop()) break outer;
      const p: Promise<void> = work(item).then(
        () => undefined,
        (err: unknown) => {
          failure ??= { err };
        },
      );
      running.add(p);
      void p.finally(() => running.delete(p));
      if (running.size >= limit) await Promise.race(running);
    }
  }
  await Promise.all(running);
  if (failure) throw failure.err;
}

