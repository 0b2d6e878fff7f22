import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { BackendClient } from '../backends/types.js';
import type { BackendConfig, Config } from '../config/schema.js';
import {
  BackendUnavailableError,
  CatchUpError,
  GithaError,
  NoLeaderError,
  RepositoryFrozenError,
  RepositoryNotFoundError,
  WriteInterruptedError,
} from '../errors.js';
import type { RefCommand } from '../protocol/receive-pack-request.js';
import type { ReportStatus } from '../protocol/report-status.js';
import type { WriteLocks } from '../state/lock.js';
import type { RepoState, StateStore } from '../state/store.js';
import { catchUp } from './catch-up.js';
import { refsChecksum } from './checksum.js';
import { Health } from './health.js';
import { frozenForRead, frozenForWrite, interruptedWrite } from './messages.js';
import { leadership, planRead, planWrite, type BackendView } from './routing.js';

export type Backend = BackendConfig;

/** Where a read goes: try `candidates` in order. */
export interface ReadRoute {
  readonly repo: string;
  readonly version: number;
  readonly candidates: readonly Backend[];
}

/** Which backends a front end can use (those with an endpoint for its transport). */
export type Accepts = (backend: Backend) => boolean;

export interface WriteRequest {
  repo: string;
  user: string;
  transport: string;
  /** The command list, when the transport knows it before forwarding (HTTP). */
  commands?: readonly RefCommand[];
  accepts?: Accepts;
}

/** How the transport's exchange with the target ended. */
export interface ForwardResult {
  /** 'complete': the whole answer arrived. 'cut': the pack never fully reached the backend, so no ref changed. 'unknown': anything else. */
  ending: 'complete' | 'cut' | 'unknown';
  report?: ReportStatus | undefined;
  bytes?: number;
  /** The command list, when the transport learned it while forwarding (SSH, git://). */
  commands?: readonly RefCommand[];
  /** The client sent an empty command list: nothing can have changed. */
  noop?: boolean;
}

/**
 * Proxies one push to `target`. Throws BackendUnavailableError with
 * bytesSent=false when nothing reached the backend (another leader is tried).
 * Must stop sending when `signal` aborts (the lock was lost).
 */
export type Forward = (target: Backend, signal: AbortSignal) => Promise<ForwardResult>;

/**
 * Whether writes are refused, judged without the lock. A marker while the
 * write lock is held is a push in flight, not an interruption: the next push
 * waits for the lock and looks again (under the lock, any marker left over is
 * an interruption).
 */
function refusesWrites(state: RepoState): boolean {
  return Boolean(state.frozen) || (state.writing !== undefined && !state.locked);
}

export type WriteOutcome =
  | { kind: 'committed'; version: number; backend: string }
  | { kind: 'unchanged'; backend: string }
  /** Could not tell whether refs changed: the marker stays (design: "Write interruption"). */
  | { kind: 'interrupted'; backend: string };

/**
 * The cluster core: routing, versions, write sessions and catch-up. It knows
 * backends and their Git clients, never HTTP or SSH.
 */
export class Cluster {
  readonly health: Health;
  private turn = 0;
  private readonly byId: Map<string, Backend>;

  constructor(
    readonly config: Config,
    readonly store: StateStore,
    private readonly locks: WriteLocks,
    private readonly clients: ReadonlyMap<string, BackendClient>,
    private readonly log: Logger,
  ) {
    this.health = new Health(config.health.downForMs);
    this.byId = new Map(config.backends.map((b) => [b.id, b as Backend]));
  }

  backend(id: string): Backend {
    const b = this.byId.get(id);
    if (!b) throw new Error(`unknown backend ${id}`);
    return b;
  }

  /** Chooses the backends for a read; never takes the write lock (design: "Read path"). */
  async routeRead(repo: string, accepts: Accepts = () => true): Promise<ReadRoute> {
    const state = await this.known(repo, await this.store.read(repo));
    if (state.frozen && frozenForRead(state.frozen.reason)) {
      throw new RepositoryFrozenError(frozenForWrite(repo, state.frozen), state.frozen.reason);
    }
    const { max } = leadership(state.versions);
    const plan = planRead(state.versions, this.views(), this.config.zone, this.turn++);
    switch (plan.kind) {
      case 'no-leader':
        throw new NoLeaderError(`no leader of ${repo} is enabled (leaders: ${plan.leaders.join(', ') || 'none'})`);
      case 'serve':
        return { repo, version: max, candidates: this.usable(plan.candidates, accepts) };
      case 'catch-up': {
        const ok = accepts(this.backend(plan.target)) && (await this.catchUpWithin(repo, state, plan.source, plan.target, this.config.catchUp.readWaitMs));
        return { repo, version: max, candidates: this.usable(ok ? [plan.target, ...plan.fallback] : plan.fallback, accepts) };
      }
    }
  }

  /** Chooses a writable leader for the advertisement a pushing client reads first. */
  async routeWriteAdvertisement(repo: string, accepts: Accepts = () => true): Promise<ReadRoute> {
    const state = await this.known(repo, await this.store.read(repo));
    if (refusesWrites(state)) throw this.writeRefusal(repo, state);
    const plan = planWrite(state.versions, this.views(), this.config.zone, this.turn++);
    if (plan.kind === 'write') return { repo, version: leadership(state.versions).max, candidates: this.usable(plan.candidates, accepts) };
    return this.routeRead(repo, accepts);
  }

  /**
   * One push (design: "Write path"): lock, refuse if frozen, pick a writable
   * leader, write the marker, forward, and commit max + 1 with the backend's
   * new checksum before the caller releases the client's final bytes.
   */
  async write(req: WriteRequest, forward: Forward): Promise<WriteOutcome> {
    const { repo } = req;
    const first = await this.known(repo, await this.store.read(repo));
    if (refusesWrites(first)) throw this.writeRefusal(repo, first);
    return this.locks.withLock(repo, async (lock) => {
      let state = await this.store.read(repo);
      // Under the lock, any marker is a write that ended without clearing it: an interruption.
      if (state.frozen || state.writing) throw this.writeRefusal(repo, state);
      let plan = planWrite(state.versions, this.views(), this.config.zone, this.turn++);
      if (plan.kind === 'catch-up') {
        const ok = await this.catchUpWithin(repo, state, plan.source, plan.target, this.config.locks.leaseMs * 3);
        if (!ok) throw new NoLeaderError(`no writable leader of ${repo}, and ${plan.target} could not be caught up to take the write`);
        plan = { kind: 'write', candidates: [plan.target] };
        state = await this.store.read(repo);
      }
      if (plan.kind === 'no-leader') {
        throw new NoLeaderError(`no leader of ${repo} is available for writing (leaders: ${plan.leaders.join(', ') || 'none'})`);
      }
      let lastError: unknown;
      for (const target of this.usable(plan.candidates, req.accepts ?? (() => true))) {
        const id = target.id;
        const writeId = randomUUID();
        const started = Date.now();
        await this.store.beginWrite(repo, lock.token, {
          id: writeId,
          backend: id,
          proxy: this.config.proxyId,
          user: req.user,
          transport: req.transport,
          started,
          preChecksum: state.checksums.get(id) ?? '',
        });
        const beat = setInterval(() => {
          this.store.heartbeat(repo, lock.token, writeId).catch(() => {});
        }, Math.max(250, Math.floor(this.config.locks.leaseMs / 3)));
        let result: ForwardResult;
        try {
          result = await forward(target, lock.signal);
        } catch (err) {
          clearInterval(beat);
          if (err instanceof BackendUnavailableError && !err.bytesSent) {
            // Nothing reached the backend: no ref can have changed. Try the next leader.
            this.health.markDown(id);
            await this.store.abortWrite(repo, lock.token, writeId);
            this.log.warn({ repo, backend: id, err: err.message }, 'write target unreachable; trying another leader');
            lastError = err;
            continue;
          }
          // Bytes reached the backend: whether refs changed is unknown, so the marker stays.
          this.log.error({ repo, backend: id, err: (err as Error).message }, 'push interrupted; repository frozen for writes');
          throw new WriteInterruptedError(repo, id);
        }
        clearInterval(beat);
        return this.finishWrite(req, lock.token, writeId, target, state.checksums.get(id) ?? '', started, result);
      }
      throw lastError instanceof GithaError ? lastError : new NoLeaderError(`no leader of ${repo} is reachable for writing`);
    });
  }

  private async finishWrite(
    req: WriteRequest,
    token: string,
    writeId: string,
    target: Backend,
    preChecksum: string,
    started: number,
    result: ForwardResult,
  ): Promise<WriteOutcome> {
    const { repo } = req;
    const updated = result.report?.unpackOk ? result.report.refs.filter((r) => r.ok) : [];
    if (result.noop || (result.ending === 'complete' && result.report && updated.length === 0)) {
      await this.store.abortWrite(repo, token, writeId);
      return { kind: 'unchanged', backend: target.id };
    }
    if (result.ending === 'unknown') return { kind: 'interrupted', backend: target.id };
    // Either the report names updated refs, or the pack was cut (then the refs
    // must be unchanged: verify rather than trust).
    this.log.debug({ repo, backend: target.id, ending: result.ending, updated: updated.length }, 'reading refs after push');
    const refs = await this.client(target.id).listRefs(repo);
    if (!refs) return { kind: 'interrupted', backend: target.id };
    const checksum = refsChecksum(refs);
    if (result.ending === 'cut' && checksum === preChecksum) {
      await this.store.abortWrite(repo, token, writeId);
      return { kind: 'unchanged', backend: target.id };
    }
    const okRefs = new Set(updated.map((r) => r.ref));
    const commands = result.commands ?? req.commands ?? [];
    const lines = commands.filter((c) => okRefs.size === 0 || okRefs.has(c.ref)).slice(0, 200);
    const version = await this.store.commitWrite(repo, token, writeId, target.id, checksum, {
      event: 'push',
      user: req.user,
      transport: req.transport,
      proxy: this.config.proxyId,
      refs: lines.map((c) => `${c.oldOid} ${c.newOid} ${c.ref}`).join('\n'),
      bytes: result.bytes ?? 0,
      durationMs: Date.now() - started,
    });
    this.log.info({ repo, backend: target.id, version, refs: okRefs.size }, 'push committed');
    this.store.noteWrite(repo, target.id, version).catch(() => {});
    return { kind: 'committed', version, backend: target.id };
  }

  /** The state of a repository, adopting it on first sight (all copies agree) or freezing it as ambiguous. */
  private async known(repo: string, state: RepoState): Promise<RepoState> {
    if (state.versions.size > 0 || state.frozen) return state;
    const found = new Map<string, string>();
    const unreachable: string[] = [];
    await Promise.all(
      this.config.backends
        .filter((b) => b.enabled)
        .map(async (b) => {
          try {
            const refs = await this.client(b.id).listRefs(repo);
            if (refs) found.set(b.id, refsChecksum(refs));
          } catch (err) {
            if (!(err instanceof BackendUnavailableError)) throw err;
            this.health.markDown(b.id);
            unreachable.push(b.id);
          }
        }),
    );
    if (found.size === 0 && unreachable.length === 0) throw new RepositoryNotFoundError(`repository ${repo} not found`);
    if (unreachable.length > 0) {
      throw new NoLeaderError(
        `githa has no record of ${repo} yet and cannot compare its copies while ${unreachable.join(', ')} ${unreachable.length > 1 ? 'are' : 'is'} unreachable`,
      );
    }
    const distinct = new Set(found.values());
    if (distinct.size === 1) {
      if (await this.store.adopt(repo, found)) this.log.info({ repo, backends: [...found.keys()] }, 'repository adopted');
    } else {
      await this.store.freeze(repo, 'ambiguous', `copies differ: ${[...found].map(([b, c]) => `${b}=${c.slice(0, 12)}`).join(' ')}`);
      this.log.warn({ repo }, 'repository frozen: copies differ and no version is recorded');
    }
    return this.store.read(repo);
  }

  /** Catches `target` up from `source`, waiting at most `waitMs` (the copy goes on after that). */
  private async catchUpWithin(repo: string, state: RepoState, sourceId: string, targetId: string, waitMs: number): Promise<boolean> {
    const version = state.versions.get(sourceId);
    const checksum = state.checksums.get(sourceId);
    if (version === undefined || checksum === undefined) return false;
    const copy = catchUp(
      this.store,
      { repo, source: this.client(sourceId), target: this.client(targetId), version, checksum, pairLockMs: this.config.catchUp.pairLockMs },
      this.log,
    ).then(
      (outcome) => outcome.status === 'ok',
      (err: unknown) => {
        this.log.warn({ repo, source: sourceId, target: targetId, err: (err as Error).message }, 'catch-up failed');
        if (err instanceof BackendUnavailableError) this.health.markDown(err.backendId);
        return false;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    });
    try {
      return await Promise.race([copy, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private writeRefusal(repo: string, state: RepoState): GithaError {
    if (state.frozen) return new RepositoryFrozenError(frozenForWrite(repo, state.frozen), state.frozen.reason);
    return new RepositoryFrozenError(interruptedWrite(repo, state.writing!), 'write-interrupted');
  }

  private usable(ids: readonly string[], accepts: Accepts): Backend[] {
    return ids.map((id) => this.backend(id)).filter(accepts);
  }

  client(id: string): BackendClient {
    const c = this.clients.get(id);
    if (!c) throw new CatchUpError(`backend ${id} has no endpoint githa can use as a Git client`);
    return c;
  }

  private views(): BackendView[] {
    return this.config.backends.map((b) => ({
      id: b.id,
      zone: b.zone,
      enabled: b.enabled,
      writable: b.writable,
      healthy: this.health.isHealthy(b.id),
    }));
  }
}
