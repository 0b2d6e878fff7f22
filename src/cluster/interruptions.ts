import { randomUUID } from 'node:crypto';
import { BackendUnavailableError } from '../errors.js';
import type { RepoState } from '../state/store.js';
import { refsChecksum } from './checksum.js';
import type { Cluster } from './cluster.js';

export type Resolution = 'none' | 'waiting' | 'cleared' | 'adopted' | 'unreachable' | 'left-frozen';

/**
 * Resolves writes whose owner died (design: "Failure modes", write
 * interruption) and ends suspect periods (safety rule 3), without a human
 * wherever that is safe:
 * - the marker's heartbeat is older than interruptions.staleAfterMs and no
 *   githa holds the lock: the resolver takes the lock (from then on the owner
 *   cannot commit) and reads the backend's refs;
 * - unchanged since the pre-write checksum → the marker is cleared;
 * - changed → adopted as a new version (nothing the user pushed is thrown
 *   away), unless onInterruptedWrite is `freeze`: then an operator decides;
 * - unreachable → writes stay frozen; reads go on from the other leaders.
 * Either way the backend turns suspect: no writes go to it while another
 * leader can take them, and after suspectGraceMs its checksum is verified
 * again (a paused owner's late bytes would show up then, and are adopted).
 */
export class InterruptionResolver {
  constructor(private readonly cluster: Cluster) {}

  async resolve(repo: string): Promise<Resolution> {
    const { store, config, log } = this.cluster;
    const first = await store.read(repo);
    if (!first.writing || first.locked) return 'none';
    const age = (await store.now()) - first.writing.heartbeat;
    if (age < config.interruptions.staleAfterMs) return 'waiting';
    return this.cluster.locks.withLock(repo, async (lock) => {
      const state = await store.read(repo);
      const marker = state.writing;
      if (!marker) return 'none';
      let live: string;
      try {
        const refs = await this.cluster.client(marker.backend).listRefs(repo);
        if (!refs) return 'unreachable';
        live = refsChecksum(refs);
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        this.cluster.health.markDown(marker.backend);
        log.warn({ repo, backend: marker.backend }, 'interrupted write: backend unreachable; writes stay frozen, reads go on');
        return 'unreachable';
      }
      const changed = live !== marker.preChecksum;
      if (changed && config.interruptions.onInterruptedWrite === 'freeze') {
        log.warn({ repo, backend: marker.backend }, 'interrupted write changed the backend; left frozen for an operator (onInterruptedWrite: freeze)');
        return 'left-frozen';
      }
      const action = changed ? 'adopt' : 'clear';
      const r = await store.resolveInterrupted(repo, lock.token, marker.id, action, live, Date.now() + config.interruptions.suspectGraceMs, {
        proxy: config.proxyId,
        writer: marker.proxy,
        user: marker.user,
        transport: marker.transport,
      });
      if (r.status !== 'OK') return 'none';
      log.warn(
        { repo, backend: marker.backend, writer: marker.proxy, user: marker.user, action, version: r.version },
        changed ? 'interrupted write adopted as a new version; backend suspect' : 'interrupted write cleared (nothing changed); backend suspect',
      );
      if (changed) store.noteWrite(repo, marker.backend, r.version).catch(() => {});
      return changed ? 'adopted' : 'cleared';
    });
  }

  /** Verifies again every suspect backend of `repo` whose grace period is over. */
  async settleSuspects(repo: string, state: RepoState): Promise<void> {
    const now = Date.now();
    const due = [...state.suspect].filter(([, until]) => until <= now).map(([b]) => b);
    if (due.length === 0 || state.locked || state.writing) return;
    const { store, log } = this.cluster;
    await this.cluster.locks.withLock(repo, async (lock) => {
      for (const backend of due) {
        // The pair lock keeps a catch-up into this backend from landing between our read and the script.
        const token = randomUUID();
        if (!(await store.tryPairLock(repo, backend, token, this.cluster.config.catchUp.pairLockMs))) continue;
        try {
          const refs = await this.cluster.client(backend).listRefs(repo);
          if (!refs) continue;
          const r = await store.settleSuspect(repo, lock.token, backend, refsChecksum(refs));
          if (r.status === 'ADOPTED') {
            log.warn({ repo, backend, version: r.version }, 'late bytes of an interrupted write landed on a suspect backend; adopted as a new version');
            store.noteWrite(repo, backend, r.version).catch(() => {});
          } else if (r.status === 'STALE') {
            log.warn({ repo, backend }, 'a suspect backend changed while behind the leaders; not adopted, it is caught up from them');
          } else {
            log.info({ repo, backend }, 'suspect backend verified; no longer suspect');
          }
        } catch (err) {
          if (err instanceof BackendUnavailableError) this.cluster.health.markDown(backend);
          else throw err;
        } finally {
          await store.releasePairLock(repo, backend, token).catch(() => {});
        }
      }
    });
  }
}
