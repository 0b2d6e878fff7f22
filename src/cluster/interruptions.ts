import { BackendUnavailableError } from '../errors.js';
import type { RefTip } from '../backends/types.js';
import type { RepoState } from '../state/repo-state.js';
import { refsChecksum } from './checksum.js';
import { noteWrite, type ClusterContext } from './context.js';
import { checksumBefore } from './write-check.js';

export type Resolution = 'none' | 'waiting' | 'cleared' | 'adopted' | 'drifted' | 'unreachable' | 'left-frozen';

/**
 * Resolves writes whose owner died (docs/operations.md "Frozen:
 * write-interrupted") and ends suspect periods, without a human
 * wherever that is safe:
 * - the marker's heartbeat is older than interruptions.staleAfterMs and no
 *   githa holds the lock: the resolver takes the lock (from then on the owner
 *   cannot commit) and reads the backend's refs;
 * - unchanged since the pre-write checksum → the marker is cleared;
 * - changed by exactly the write's commands (the marker holds them; its refs
 *   outside them are the recorded ones) → adopted as a new version (nothing
 *   the user pushed is thrown away), unless onInterruptedWrite is `freeze`:
 *   then an operator decides;
 * - changed, the commands unknown (a transport that had not read them yet, or
 *   more than the marker keeps), or changed outside them, or the repository
 *   gone → drifted: never adopted blind; the repair keeps what the copy holds
 *   that the leaders lack, then refills it;
 * - changed otherwise (the copy was off its record: docs/architecture.md
 *   "Verified copies") → nothing adopted; the copy is recorded drifted and
 *   its repair starts (it keeps what the copy holds);
 * - unreachable → writes stay frozen; reads go on from the other leaders.
 * Either way the backend turns suspect: no writes go to it while another
 * leader can take them, and after suspectGraceMs its checksum is verified
 * again (a paused owner's late bytes would show up then, and are adopted).
 */
export class InterruptionResolver {
  constructor(private readonly ctx: ClusterContext) {}

  async resolve(repo: string): Promise<Resolution> {
    const { repos, config, log } = this.ctx;
    const first = await repos.read(repo);
    if (!first.writing || first.locked) return 'none';
    const age = (await this.ctx.clock.now(repo)) - first.writing.heartbeat;
    if (age < config.interruptions.staleAfterMs) return 'waiting';
    return this.ctx.writeLocks.withLock(repo, async (lock) => {
      const state = await repos.read(repo);
      const marker = state.writing;
      if (!marker) return 'none';
      let live: string;
      let refs: RefTip[] | null;
      try {
        refs = await this.ctx.backends.client(marker.backend).listRefs(repo, lock.signal);
        // The repository is gone from the backend (a wipe, a replaced disk): nothing of the write can be adopted; the copy is drifted as missing.
        live = refs ? refsChecksum(refs) : 'missing';
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        this.ctx.health.markDown(marker.backend);
        log.warn({ repo, backend: marker.backend }, 'interrupted write: backend unreachable; writes stay frozen, reads go on');
        return 'unreachable';
      }
      const changed = live !== marker.preChecksum;
      if (changed && config.interruptions.onInterruptedWrite === 'freeze') {
        log.warn({ repo, backend: marker.backend }, 'interrupted write changed the backend; left frozen for an operator (onInterruptedWrite: freeze)');
        return 'left-frozen';
      }
      // Adopted only when the copy holds the record outside the write's own commands (docs/architecture.md "Verified copies");
      // a changed copy whose write's commands are unknown (or a missing one) is never adopted blind: it is drifted, and its repair
      // keeps whatever it holds that the leaders lack (the write's commits among them) before it is refilled.
      const explained = refs !== null && marker.commands !== undefined && checksumBefore(refs, marker.commands) === marker.preChecksum;
      const action = !changed ? 'clear' : explained ? 'adopt' : 'drift';
      const r = await repos.resolveInterrupted(repo, {
        token: lock.token,
        writeId: marker.id,
        action,
        checksum: live,
        suspectUntil: Date.now() + config.interruptions.suspectGraceMs,
        log: { proxy: config.proxyId, writer: marker.proxy, user: marker.user, transport: marker.transport },
      });
      if (r.status !== 'ok') return 'none';
      if (action === 'drift') {
        log.error(
          { repo, backend: marker.backend, writer: marker.proxy, recorded: marker.preChecksum, live },
          'COPY CONTRADICTS RECORD: an interrupted write found its backend off its record; nothing adopted, the copy leads no more and is repaired',
        );
        this.ctx.repairs.schedule(repo, marker.backend, 'interrupted write found the copy off its record');
        return 'drifted';
      }
      log.warn(
        { repo, backend: marker.backend, writer: marker.proxy, user: marker.user, action, version: r.version },
        changed ? 'interrupted write adopted as a new version; backend suspect' : 'interrupted write cleared (nothing changed); backend suspect',
      );
      if (changed) noteWrite(this.ctx, repo, marker.backend, r.version);
      return changed ? 'adopted' : 'cleared';
    });
  }

  /** Verifies again every suspect backend of `repo` whose grace period is over. */
  async settleSuspects(repo: string, state: RepoState): Promise<void> {
    const now = Date.now();
    const due = [...state.suspect].filter(([, until]) => until <= now);
    if (due.length === 0 || state.locked || state.writing) return;
    const { repos, log, pairs, config } = this.ctx;
    await this.ctx.writeLocks.withLock(repo, async (lock) => {
      for (const [backend, until] of due) {
        // The pair lock keeps a catch-up into this backend from landing between our read and the script.
        const held = await pairs.acquire(repo, backend, config.catchUp.pairLockMs, lock.signal);
        if (!held) continue;
        try {
          const refs = await this.ctx.backends.client(backend).listRefs(repo, held.lease.signal);
          if (!refs) continue;
          held.lease.signal.throwIfAborted();
          // Late bytes are adopted only when they are the interrupted write's commands on top of the record.
          const commands = await repos.suspectCommands(repo, backend, until);
          const baseChecksum = commands ? checksumBefore(refs, commands) : '';
          const r = await repos.settleSuspect(repo, { token: lock.token, backend, until, liveChecksum: refsChecksum(refs), baseChecksum });
          if (r.status === 'adopted') {
            log.warn({ repo, backend, version: r.version }, 'late bytes of an interrupted write landed on a suspect backend; adopted as a new version');
            noteWrite(this.ctx, repo, backend, r.version);
          } else if (r.status === 'stale') {
            log.warn({ repo, backend }, 'a suspect backend changed while behind the leaders; not adopted, it is caught up from them');
          } else if (r.status === 'drifted') {
            log.error(
              { repo, backend, commandsKnown: commands !== undefined },
              'COPY CONTRADICTS RECORD: a suspect backend changed by more than its interrupted write; nothing adopted, the copy leads no more and is repaired',
            );
            this.ctx.repairs.schedule(repo, backend, 'suspect copy off its record');
          } else if (r.status === 'cleared') {
            log.info({ repo, backend }, 'suspect backend verified; no longer suspect');
          }
        } catch (err) {
          if (err instanceof BackendUnavailableError) this.ctx.health.markDown(backend);
          else throw err;
        } finally {
          await held.lease.release();
        }
      }
    });
  }
}
