import { randomUUID } from 'node:crypto';
import { BackendUnavailableError, ClusterStateUnavailableError, QuorumNotReachedError, WriteInterruptedError } from '../errors.js';
import type { Held } from '../state/lease.js';
import type { RepoState } from '../state/repo-state.js';
import { refsChecksum } from './checksum.js';
import { noteWrite, type ClusterContext } from './context.js';
import { quorumNotReached } from './messages.js';
import { quorumCopies } from './quorum.js';
import type { Backend, Forward, ForwardResult, WriteOutcome, WriteRequest } from './types.js';

/** Thrown when nothing of the push reached the target: the caller tries the next leader. */
export class TargetUnreachable extends Error {
  constructor(override readonly cause: BackendUnavailableError) {
    super(cause.message);
  }
}

/**
 * One push to one target under the write lock (docs/architecture.md "A
 * push"): it owns the marker and its heartbeat, forwards the push, and
 * finishes it — decides from the report whether refs changed, makes the
 * write-quorum copies, and commits all of them at max + 1 in one guarded
 * script. Only then may the transport release the client's final bytes: an
 * acknowledged push is on writeQuorum backends.
 */
export class WriteSession {
  readonly writeId = randomUUID();
  private readonly started = Date.now();
  private readonly preChecksum: string;

  constructor(
    private readonly ctx: ClusterContext,
    private readonly req: WriteRequest,
    private readonly lock: Held,
    /** The state read under the lock before the push. */
    private readonly state: RepoState,
    private readonly target: Backend,
  ) {
    this.preChecksum = state.checksums.get(target.id) ?? '';
  }

  async run(forward: Forward): Promise<WriteOutcome> {
    const { repo } = this.req;
    await this.begin();
    const every = Math.max(250, Math.floor(this.ctx.config.locks.leaseMs / 3));
    const beat = setInterval(() => {
      // A missed beat only ages the marker; the lock's lease, not the beat, guards the commit.
      this.ctx.repos.heartbeat(repo, this.lock.token, this.writeId).catch((err: unknown) => {
        this.ctx.log.debug({ repo, err: (err as Error).message }, 'marker heartbeat failed');
      });
    }, every);
    try {
      if (this.lock.signal.aborted) {
        // The lease may be gone before a byte was sent: take the marker back (guarded, so a lost lock changes nothing) and stop.
        await this.ctx.repos.abortWrite(repo, this.lock.token, this.writeId).catch(() => false);
        throw this.lock.signal.reason;
      }
      let result: ForwardResult;
      try {
        result = await forward(this.target, this.lock.signal);
      } catch (err) {
        if (err instanceof BackendUnavailableError && !err.bytesSent) {
          // Nothing reached the backend: no ref can have changed.
          this.ctx.health.markDown(this.target.id);
          await this.ctx.repos.abortWrite(repo, this.lock.token, this.writeId);
          throw new TargetUnreachable(err);
        }
        // Bytes reached the backend: whether refs changed is unknown, so the marker stays.
        this.ctx.log.error({ repo, backend: this.target.id, err: (err as Error).message }, 'push interrupted; repository frozen for writes');
        throw new WriteInterruptedError(repo, this.target.id);
      }
      // The marker keeps beating while quorum copies are made.
      return await this.finish(result);
    } finally {
      clearInterval(beat);
    }
  }

  /**
   * Writes the marker. When Redis ran the script but its replicas did not
   * confirm it in time (redis.waitReplicas), the marker is taken back: no
   * byte has gone to the backend, so leaving it would freeze the repository
   * and make the backend suspect for nothing.
   */
  private async begin(): Promise<void> {
    const { repo } = this.req;
    try {
      await this.ctx.repos.beginWrite(repo, this.lock.token, {
        id: this.writeId,
        backend: this.target.id,
        proxy: this.ctx.config.proxyId,
        user: this.req.user,
        transport: this.req.transport,
        started: this.started,
        preChecksum: this.preChecksum,
      });
    } catch (err) {
      if (err instanceof ClusterStateUnavailableError) {
        await this.ctx.repos.abortWrite(repo, this.lock.token, this.writeId).catch((e: unknown) => {
          this.ctx.log.warn({ repo, err: (e as Error).message }, 'could not take back the marker of a write that never started');
        });
      }
      throw err;
    }
  }

  private async finish(result: ForwardResult): Promise<WriteOutcome> {
    const { ctx, req, lock, writeId, target } = this;
    const { repo } = req;
    const updated = result.report?.unpackOk ? result.report.refs.filter((r) => r.ok) : [];
    if (result.noop || (result.ending === 'complete' && result.report && updated.length === 0)) {
      await ctx.repos.abortWrite(repo, lock.token, writeId);
      return { kind: 'unchanged', backend: target.id };
    }
    if (result.ending === 'unknown') return { kind: 'interrupted', backend: target.id };
    // Either the report names updated refs, or the pack was cut, or the backend's answer ended without a report (a 5xx):
    // then the refs are most likely unchanged, and the backend is done with them. Verify rather than trust.
    const refs = await ctx.backends.client(target.id).listRefs(repo, undefined, req.lent);
    if (!refs) return { kind: 'interrupted', backend: target.id };
    const checksum = refsChecksum(refs);
    const unreported = result.ending === 'cut' || (result.ending === 'complete' && !result.report);
    if (unreported && checksum === this.preChecksum) {
      await ctx.repos.abortWrite(repo, lock.token, writeId);
      return { kind: 'unchanged', backend: target.id };
    }

    const quorum = ctx.config.replication.writeQuorum;
    const copies = quorumCopies(ctx, { repo, lock, writeId, target, state: this.state, sourceRefs: refs, checksum, needed: quorum - 1 });
    const made = await copies.settled;
    const okRefs = new Set(updated.map((r) => r.ref));
    const commands = result.commands ?? req.commands ?? [];
    const lines = commands.filter((c) => okRefs.size === 0 || okRefs.has(c.ref)).slice(0, 200);
    // The copies keep their pair locks until recorded (CopyRequest.hold): a catch-up planned from older state cannot turn them back meanwhile.
    let version: number;
    try {
      version = await ctx.repos.commitWrite(repo, {
        token: lock.token,
        writeId,
        backend: target.id,
        checksum,
        copies: made,
        log: {
          event: 'push',
          user: req.user,
          transport: req.transport,
          proxy: ctx.config.proxyId,
          refs: lines.map((c) => `${c.oldOid} ${c.newOid} ${c.ref}`).join('\n'),
          bytes: result.bytes ?? 0,
          durationMs: Date.now() - this.started,
        },
      });
    } catch (err) {
      // Nothing recorded: copies made now or later are just released.
      copies.late((_backend, release) => void release());
      throw err;
    } finally {
      await copies.releaseMade();
    }
    ctx.log.info({ repo, backend: target.id, copies: made, version, refs: okRefs.size }, 'push committed');
    noteWrite(ctx, repo, target.id, version);
    // Copies that finish after the commit (past the quorum timeout) are recorded as ordinary catch-ups.
    copies.late((backend, release) => {
      ctx.repos
        .commitCatchUp(repo, { target: backend, version, checksum, source: target.id, log: { quorum: 'late' } })
        .then(
          (r) => ctx.log.debug({ repo, backend, version, status: r.kind.toUpperCase() }, 'late quorum copy'),
          (err: unknown) => ctx.log.debug({ repo, backend, version, err: (err as Error).message }, 'late quorum copy not recorded; replication will copy it again'),
        )
        .finally(() => void release());
    });
    if (made.length < quorum - 1) {
      ctx.log.error({ repo, backend: target.id, copies: made, quorum }, 'push recorded without its write quorum');
      throw new QuorumNotReachedError(quorumNotReached(repo, target.id, made, quorum));
    }
    return { kind: 'committed', version, backend: target.id };
  }
}
