import { randomUUID } from 'node:crypto';
import type { RefTip } from '../backends/types.js';
import { BackendUnavailableError, ClusterStateUnavailableError, CopyContradictsRecordError, QuorumNotReachedError, WriteInterruptedError } from '../errors.js';
import type { RefCommand } from '../protocol/receive-pack-request.js';
import type { Held } from '../state/lease.js';
import { encodeCommands } from '../state/marker-commands.js';
import type { RepoState } from '../state/repo-state.js';
import { writeQuorumOf } from './assignment.js';
import { refsChecksum } from './checksum.js';
import { noteWrite, type ClusterContext } from './context.js';
import { chooseFanOut, FanOut, type CopyVerdict } from './fan-out.js';
import { quorumNotReached } from './messages.js';
import { quorumCopies } from './quorum.js';
import type { Backend, Forward, ForwardResult, WriteOutcome, WriteRequest } from './types.js';
import { whileWaiting } from './wait-report.js';
import { allLanded, checksumBefore } from './write-check.js';

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
  /** The command list as the marker holds it, when the transport knows it before forwarding (HTTP); undefined over the marker's cap. */
  private readonly encoded: string | undefined;
  /** Whether the marker holds the push's whole command list (docs/redis.md `writing` `commands`). */
  private commandsMarked = false;
  /** The copies the push fans out to (src/cluster/fan-out.ts); none until run() chose them. */
  private fan: FanOut;

  constructor(
    private readonly ctx: ClusterContext,
    private readonly req: WriteRequest,
    private readonly lock: Held,
    /** The state read under the lock before the push. */
    private readonly state: RepoState,
    private readonly target: Backend,
  ) {
    this.preChecksum = state.checksums.get(target.id) ?? '';
    this.encoded = req.commands ? encodeCommands(req.commands) : undefined;
    this.fan = new FanOut(ctx, req, lock, []);
  }

  async run(forward: Forward): Promise<WriteOutcome> {
    const { repo } = this.req;
    // Fan-out copies hold their pair locks from before the marker names them until the commit or abort is recorded.
    // A command list the marker cannot hold (over its cap) is never fanned out: an interruption would
    // leave every copy changed by unknown commands, drifted, and no leader to read from.
    const markable = this.req.commands === undefined || this.encoded !== undefined;
    this.fan = new FanOut(this.ctx, this.req, this.lock, markable ? await chooseFanOut(this.ctx, this.req, this.lock, this.state, this.target) : []);
    try {
      await this.begin();
    } catch (err) {
      await this.fan.release();
      throw err;
    }
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
        await this.fan.release();
        throw this.lock.signal.reason;
      }
      let result: ForwardResult;
      try {
        result = await forward(this.target, this.lock.signal, {
          commands: (c) => this.markCommands(c),
          copies: this.fan.backends,
          stallMs: this.ctx.config.replication.fanOutStallMs,
        });
      } catch (err) {
        if (err instanceof BackendUnavailableError && !err.bytesSent && (await this.copiesUntouched())) {
          // Nothing reached the backend: no ref can have changed.
          this.ctx.health.markDown(this.target.id);
          await this.ctx.repos.abortWrite(repo, this.lock.token, this.writeId);
          await this.fan.release();
          throw new TargetUnreachable(err);
        }
        await this.fan.release();
        // Bytes reached the backend (or a copy): whether refs changed is unknown, so the marker stays.
        this.ctx.log.error({ repo, backend: this.target.id, err: (err as Error).message }, 'push interrupted; repository frozen for writes');
        throw new WriteInterruptedError(repo, this.target.id);
      }
      // The marker keeps beating while quorum copies are made.
      return await this.finish(result);
    } finally {
      clearInterval(beat);
      // Whatever ended the session (a throw included), no fan-out pair lock outlives it; those already freed are not freed twice.
      await this.fan.release();
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
    // HTTP knows the commands before forwarding: the marker holds them from the start.
    const commands = this.encoded;
    const copies = this.fan.ids.join(' ');
    try {
      await this.ctx.repos.beginWrite(repo, this.lock.token, {
        id: this.writeId,
        backend: this.target.id,
        proxy: this.ctx.config.proxyId,
        user: this.req.user,
        transport: this.req.transport,
        started: this.started,
        preChecksum: this.preChecksum,
        ...(commands !== undefined ? { commands } : {}),
        // Named in the same turn as the marker: reads avoid them before a byte goes (docs/redis.md `writing`).
        ...(copies !== '' ? { copies } : {}),
      });
      this.commandsMarked = commands !== undefined;
    } catch (err) {
      if (err instanceof ClusterStateUnavailableError) {
        await this.ctx.repos.abortWrite(repo, this.lock.token, this.writeId).catch((e: unknown) => {
          this.ctx.log.warn({ repo, err: (e as Error).message }, 'could not take back the marker of a write that never started');
        });
      }
      throw err;
    }
  }

  /**
   * Records the command list in the marker (guarded: a lost lock changes
   * nothing), for a transport that learns it while forwarding. A list over
   * the cap is not recorded: an interruption of this write is then left
   * frozen for an operator rather than adopted blind.
   */
  private async markCommands(commands: readonly RefCommand[] | undefined): Promise<boolean> {
    if (this.commandsMarked || !commands) return this.commandsMarked;
    const encoded = encodeCommands(commands);
    if (encoded === undefined) return false;
    this.commandsMarked = await this.ctx.repos.markCommands(this.req.repo, this.lock.token, this.writeId, encoded).catch((err: unknown) => {
      this.ctx.log.warn({ repo: this.req.repo, err: (err as Error).message }, 'could not record the push\'s commands in its marker');
      return false;
    });
    return this.commandsMarked;
  }

  /** An outcome that leaves the marker: it holds what githa knows of the commands, for the resolver. */
  private async interrupted(result: ForwardResult): Promise<WriteOutcome> {
    await this.markCommands(result.commands);
    // The marker keeps naming the fan-out copies: the resolver makes them suspect with the push's commands (src/cluster/interruptions.ts).
    await this.fan.release();
    return { kind: 'interrupted', backend: this.target.id };
  }

  /**
   * The target held something else than its record when the push landed:
   * nothing is recorded (the marker goes), the copy is marked drifted (it
   * leads no more, so the next push goes elsewhere) and repaired — the repair
   * keeps the commits it holds, the client's among them.
   */
  private async refuse(live: string, verdicts?: ReadonlyMap<string, CopyVerdict>): Promise<never> {
    const { ctx, req, lock, writeId, target } = this;
    const { repo } = req;
    try {
      await ctx.repos.abortWrite(repo, lock.token, writeId);
      const version = this.state.versions.get(target.id);
      if (version !== undefined) await ctx.repos.markDrift(repo, target.id, version, this.preChecksum, live);
    } catch (err) {
      ctx.log.warn({ repo, backend: target.id, err: (err as Error).message }, 'could not record a copy found off its record by a push');
    }
    // Fan-out copies that took any of a push nothing records hold refs their record lacks: drifted and repaired too.
    await this.fan.settle(verdicts, new Set(['partial', 'off-record']));
    ctx.log.error(
      { repo, backend: target.id, recorded: this.preChecksum, live },
      'COPY CONTRADICTS RECORD: a push found its target off its record; nothing recorded, the copy leads no more and is repaired',
    );
    ctx.repairs.schedule(repo, target.id, 'push found the copy off its record');
    throw new CopyContradictsRecordError(repo, target.id);
  }

  /** Whether the target's post-push refs, with the commands that landed undone, are its recorded pre-push refs. */
  private agreesWithRecord(refs: readonly RefTip[], commands: readonly RefCommand[]): boolean {
    return this.preChecksum !== '' && checksumBefore(refs, commands) === this.preChecksum;
  }

  /** A target nothing reached: a fan-out copy still may have been; the next leader takes the push only when every copy lists as recorded. */
  private async copiesUntouched(): Promise<boolean> {
    if (this.fan.copies.length === 0) return true;
    const verdicts = await this.fan.judge(this.fan.list(undefined), this.req.commands ?? []);
    return [...verdicts.values()].every((v) => v.kind === 'unchanged');
  }

  /**
   * The target kept none of the push (the client is told what it reported).
   * A fan-out copy that took any of it is brought back to the target's refs
   * before the marker goes; one that cannot be (or cannot be listed) leaves
   * the marker for the resolver: no leader keeps refs nobody checked.
   */
  private async unchanged(result: ForwardResult, listings: ReturnType<FanOut['list']>, commands: readonly RefCommand[], refs: readonly RefTip[] | undefined): Promise<WriteOutcome> {
    const { ctx, req, lock, writeId, target, fan } = this;
    const verdicts = await fan.judge(listings, commands);
    for (const [id, v] of verdicts) {
      // Off its record beyond the push: MARK_DRIFT waits for the marker to go, and until it lands the copy would lead
      // with refs nobody recorded. The marker stays instead; the resolver drifts it (src/cluster/interruptions.ts).
      if (v.kind === 'unknown' || v.kind === 'off-record') return this.interrupted(result);
      if (v.kind === 'partial' && !(await fan.restore(id, target, this.preChecksum, commands, refs))) return this.interrupted(result);
    }
    try {
      await ctx.repos.abortWrite(req.repo, lock.token, writeId);
    } finally {
      await fan.settle(verdicts);
    }
    return { kind: 'unchanged', backend: target.id };
  }

  private async finish(result: ForwardResult): Promise<WriteOutcome> {
    const { ctx, req, lock, writeId, target, fan } = this;
    const { repo } = req;
    const updated = result.report?.unpackOk ? result.report.refs.filter((r) => r.ok) : [];
    const commands = result.commands ?? req.commands ?? [];
    // The fan-out copies are listed while the target is (docs/architecture.md "Write quorum").
    const listings = fan.list(result);
    if (result.noop || (result.ending === 'complete' && result.report && updated.length === 0)) {
      return this.unchanged(result, listings, commands, undefined);
    }
    if (result.ending === 'unknown') return this.interrupted(result);
    // Either the report names updated refs, or the pack was cut, or the backend's answer ended without a report (a 5xx):
    // then the refs are most likely unchanged, and the backend is done with them. Verify rather than trust.
    const refs = await ctx.backends.client(target.id).listRefs(repo, undefined, req.lent);
    if (!refs) return this.interrupted(result);
    const checksum = refsChecksum(refs);
    const unreported = result.ending === 'cut' || (result.ending === 'complete' && !result.report);
    if (unreported && checksum === this.preChecksum) return this.unchanged(result, listings, commands, refs);
    const okRefs = new Set(updated.map((r) => r.ref));
    // Reported: the `ok` commands landed. Unreported: any of them may have; undoCommands undoes those that did.
    const landed = unreported ? commands : commands.filter((c) => okRefs.has(c.ref));
    // A reported update the listing lacks was lost on the target after it was made: never acknowledged from it.
    if (!this.agreesWithRecord(refs, landed) || (!unreported && !allLanded(refs, landed))) {
      const verdicts = await fan.judge(listings, commands);
      // A copy that may hold the push and could not be listed, or holds any of it: the marker stays for the resolver, which
      // finds the target off its record and settles the copies (suspect), so no copy leads meanwhile with refs nobody recorded.
      if ([...verdicts.values()].some((v) => v.kind !== 'unchanged')) return this.interrupted(result);
      await this.refuse(checksum, verdicts);
    }
    const verdicts = await fan.judge(listings, commands, checksum);
    const fanMade = fan.ids.filter((id) => verdicts.get(id)?.kind === 'same');
    const front = fan.handOff(verdicts, commands);
    const quorum = writeQuorumOf(ctx.config.replication, this.state);
    // Copies holding part of the push are all relayed to its outcome, even past the quorum (else they would stay off their record).
    const needed = Math.max(quorum - 1 - fanMade.length, front.filter((f) => verdicts.get(f.backend.id)?.kind === 'partial').length);
    const copies = quorumCopies(ctx, {
      repo,
      lock,
      writeId,
      target,
      state: this.state,
      sourceRefs: refs,
      checksum,
      needed,
      ...(fan.copies.length > 0 ? { front, exclude: new Set(fan.ids), named: fan.ids } : {}),
    });
    const relayed = await whileWaiting(req.waits, { kind: 'copies', repo, backends: needed }, () => copies.settled);
    const made = [...fanMade, ...relayed];
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
          // The client's address (docs/redis.md): behind a trusted balancer, its PROXY header's.
          ...(req.ip ? { ip: req.ip } : {}),
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
      // After the record: fan-out copies off their record are drifted (MARK_DRIFT waits for no marker), and their pair locks go.
      await fan.settle(verdicts);
    }
    ctx.log.info({ repo, backend: target.id, copies: made, ...(fan.copies.length > 0 ? { fanOut: fanMade } : {}), version, refs: okRefs.size }, 'push committed');
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
      ctx.observer.quorumMissed();
      ctx.log.error({ repo, backend: target.id, copies: made, quorum }, 'push recorded without its write quorum');
      throw new QuorumNotReachedError(quorumNotReached(repo, target.id, made, quorum));
    }
    return { kind: 'committed', version, backend: target.id };
  }
}
