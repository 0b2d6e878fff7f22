import { setTimeout as sleep } from 'node:timers/promises';
import type { BackendClient } from '../backends/types.js';

/**
 * A bandwidth cap shared by the copies of one `githa rebalance` (or a drain,
 * `--bandwidth`; docs/architecture.md "Moves"): each chunk of a relayed pack
 * waits until the bytes relayed so far fit the rate since the first one. The
 * relay streams (no disk), so slowing the pack read slows the source's
 * upload-pack and the target's receive-pack with it.
 */
export class Throttle {
  /** When (performance.now() ms) the bytes taken so far fit the rate. */
  private next = 0;

  constructor(readonly bytesPerSecond: number) {}

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const now = performance.now();
    const start = Math.max(now, this.next);
    this.next = start + (bytes / this.bytesPerSecond) * 1000;
    if (start > now) await sleep(start - now, undefined, { signal });
  }

  async *pace(chunks: AsyncIterable<Buffer>, signal?: AbortSignal): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      await this.take(chunk.length, signal);
      yield chunk;
    }
  }
}

/** `client` whose fetched packs go through `throttle` (every other call unchanged). */
export function throttled(client: BackendClient, throttle: Throttle | undefined): BackendClient {
  if (!throttle) return client;
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'fetchPack') {
        return (repo: string, wants: readonly string[], haves: readonly string[], signal?: AbortSignal) => throttle.pace(target.fetchPack(repo, wants, haves, signal), signal);
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
