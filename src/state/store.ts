import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ClusterStateUnavailableError, CommitRefusedError, RepositoryFrozenError } from '../errors.js';
import { DEFAULTS } from '../config/defaults.js';
import { Keys } from './keys.js';
import { flattenFields, guarded, runScript, type Durability } from './redis-call.js';
import {
  ABORT_WRITE,
  ACQUIRE_PAIR,
  ADOPT,
  BEGIN_WRITE,
  COMMIT_CATCH_UP,
  COMMIT_WRITE,
  FREEZE,
  HEARTBEAT,
  MARK_DRIFT,
  RECOVER,
  RESOLVE_INTERRUPTED,
  SETTLE_SUSPECT,
} from './scripts.js';

export type FreezeReason = 'write-interrupted' | 'leaders-lost' | 'ambiguous' | 'maintenance';

export interface WritingMarker {
  id: string;
  backend: string;
  proxy: string;
  user: string;
  transport: string;
  started: number;
  heartbeat: number;
  preChecksum: string;
}

export interface FrozenState {
  reason: FreezeReason;
  detail: string;
  since: number;
  /** The backend ids the freeze concerns (field `backends`); absent on a record written before githa stored them (docs/redis.md). */
  backends?: readonly string[];
}

/** One repository's state as read in one round trip. */
export interface RepoState {
  versions: ReadonlyMap<string, number>;
  checksums: ReadonlyMap<string, string>;
  writing?: WritingMarker;
  frozen?: FrozenState;
  /** Whether some githa holds the write lock (a push is in flight, or its lease has not run out yet). */
  locked?: boolean;
  /** Backends whose marker was cleared by force, until when (epoch ms): no writes go to them (safety rule 3). */
  suspect: ReadonlyMap<string, number>;
  /** Backends whose live checksum differs from the recorded one: not leaders until resolved. */
  drift: ReadonlyMap<string, { checksum: string; at: number }>;
  /** Random id of this record, new at every adoption or recovery. */
  epoch?: string;
}

/** One push-log entry as read back: its stream id, when it was added (ms), its fields. */
export interface LogEntry {
  id: string;
  at: number;
  fields: Record<string, string>;
}

/** Fields of a push-log entry (one per write attempt, catch-up, adoption). */
export type LogFields = Record<string, string | number>;

const EVENTS_MAX = 100_000;

/**
 * githa's view of the cluster state in Redis. Every read is one round trip;
 * every multi-key change is one guarded script. Any Redis failure surfaces as
 * ClusterStateUnavailableError: callers fail closed (design: "Fail closed").
 */
export class StateStore {
  readonly keys: Keys;

  constructor(
    readonly redis: Redis,
    prefix: string,
    /** Push-log entries kept per repository (XADD MAXLEN ~): config pushLog.maxLength. */
    readonly logMax: number = DEFAULTS.pushLog.maxLength,
    /** Replicas that must confirm markers, commits, adoptions, resolutions, freezes and recoveries before they count (redis.waitReplicas). */
    readonly durable?: Durability,
  ) {
    this.keys = new Keys(prefix);
    redis.defineCommand('githaBeginWrite', { numberOfKeys: 3, lua: BEGIN_WRITE });
    redis.defineCommand('githaHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT });
    redis.defineCommand('githaAbortWrite', { numberOfKeys: 2, lua: ABORT_WRITE });
    redis.defineCommand('githaCommitWrite', { numberOfKeys: 5, lua: COMMIT_WRITE });
    redis.defineCommand('githaCommitCatchUp', { numberOfKeys: 4, lua: COMMIT_CATCH_UP });
    redis.defineCommand('githaAdopt', { numberOfKeys: 5, lua: ADOPT });
    redis.defineCommand('githaFreeze', { numberOfKeys: 1, lua: FREEZE });
    redis.defineCommand('githaResolveInterrupted', { numberOfKeys: 6, lua: RESOLVE_INTERRUPTED });
    redis.defineCommand('githaSettleSuspect', { numberOfKeys: 5, lua: SETTLE_SUSPECT });
    redis.defineCommand('githaMarkDrift', { numberOfKeys: 5, lua: MARK_DRIFT });
    redis.defineCommand('githaRecover', { numberOfKeys: 9, lua: RECOVER });
    redis.defineCommand('githaAcquirePair', { numberOfKeys: 3, lua: ACQUIRE_PAIR });
  }

  /** Versions, checksums, marker, freeze state and whether the write lock is held: one round trip. */
  async read(repo: string): Promise<RepoState> {
    const k = this.keys;
    const results = await guarded(() =>
      this.redis
        .pipeline()
        .hgetall(k.versions(repo))
        .hgetall(k.checksums(repo))
        .hgetall(k.writing(repo))
        .hgetall(k.frozen(repo))
        .exists(k.lock(repo))
        .hgetall(k.suspect(repo))
        .hgetall(k.drift(repo))
        .hget(k.meta(repo), 'epoch')
        .exec(),
    );
    const values = (results ?? []).map(([err, value]) => {
      if (err) throw new ClusterStateUnavailableError('cluster state unavailable: Redis answered with an error', { cause: err });
      return value;
    });
    const [versions = {}, checksums = {}, writing = {}, frozen = {}] = values.slice(0, 4) as Record<string, string>[];
    const [suspect = {}, drift = {}] = values.slice(5, 7) as Record<string, string>[];
    const state: RepoState = {
      versions: new Map(Object.entries(versions).map(([b, v]) => [b, Number(v)])),
      checksums: new Map(Object.entries(checksums)),
      locked: values[4] === 1,
      suspect: new Map(Object.entries(suspect).map(([b, until]) => [b, Number(until)])),
      drift: new Map(
        Object.entries(drift).map(([b, v]) => {
          const [checksum = '', at = '0'] = v.split(' ');
          return [b, { checksum, at: Number(at) }];
        }),
      ),
    };
    if (typeof values[7] === 'string') state.epoch = values[7];
    if (writing.id) {
      state.writing = {
        id: writing.id,
        backend: writing.backend ?? '',
        proxy: writing.proxy ?? '',
        user: writing.user ?? '',
        transport: writing.transport ?? '',
        started: Number(writing.started ?? 0),
        heartbeat: Number(writing.heartbeat ?? 0),
        preChecksum: writing.preChecksum ?? '',
      };
    }
    if (frozen.reason) {
      state.frozen = { reason: frozen.reason as FreezeReason, detail: frozen.detail ?? '', since: Number(frozen.since ?? 0) };
      if (frozen.backends !== undefined) state.frozen.backends = frozen.backends.split(' ').filter((b) => b !== '');
    }
    return state;
  }

  /** Writes the `writing` marker; refuses when the lock is not ours, or frozen, or a write is in flight. */
  async beginWrite(repo: string, token: string, marker: Omit<WritingMarker, 'heartbeat'>): Promise<void> {
    const k = this.keys;
    const [status] = await runScript<[string]>(this.redis, 'githaBeginWrite', [k.lock(repo), k.frozen(repo), k.writing(repo)], [token, ...flattenFields(marker)], this.durable);
    if (status === 'FROZEN') throw new RepositoryFrozenError(`repository ${repo} is frozen`, 'unknown');
    if (status === 'WRITING') {
      throw new RepositoryFrozenError(
        `an earlier push to ${repo} was interrupted and is not resolved yet; writes are refused until it is`,
        'write-interrupted',
      );
    }
    if (status !== 'OK') throw new CommitRefusedError(`could not start the write: the write lock on ${repo} was lost`);
  }

  async heartbeat(repo: string, token: string, writeId: string): Promise<boolean> {
    const [status] = await runScript<[string]>(this.redis, 'githaHeartbeat', [this.keys.lock(repo), this.keys.writing(repo)], [token, writeId]);
    return status === 'OK';
  }

  /** Removes the marker of a write that changed no ref. */
  async abortWrite(repo: string, token: string, writeId: string): Promise<boolean> {
    const [status] = await runScript<[string]>(this.redis, 'githaAbortWrite', [this.keys.lock(repo), this.keys.writing(repo)], [token, writeId]);
    return status === 'OK';
  }

  /** Commits a write: `backend` and the quorum `copies` become max + 1 with `checksum`; returns the new version. */
  async commitWrite(
    repo: string,
    token: string,
    writeId: string,
    backend: string,
    checksum: string,
    copies: readonly string[],
    log: LogFields,
  ): Promise<number> {
    const k = this.keys;
    const reply = await runScript<[string, number?]>(
      this.redis,
      'githaCommitWrite',
      [k.lock(repo), k.writing(repo), k.versions(repo), k.checksums(repo), k.log(repo)],
      [token, writeId, backend, checksum, this.logMax, copies.length, ...copies, ...flattenFields(log)],
      this.durable,
    );
    if (reply[0] !== 'OK' || reply[1] === undefined) {
      throw new CommitRefusedError(
        reply[0] === 'LOCK'
          ? `the write lock on ${repo} expired before the push could be recorded`
          : `the write marker of ${repo} is no longer this push's`,
      );
    }
    return Number(reply[1]);
  }

  /**
   * Records that `target` now holds version `version` (checksum `checksum`).
   * Answers 'OK', or why not: 'CURRENT' (already there or newer), 'MOVED'
   * (that version is no longer recorded with that checksum), 'WRITING'.
   */
  async commitCatchUp(repo: string, target: string, version: number, checksum: string, source: string, log: LogFields): Promise<string> {
    const k = this.keys;
    const [status] = await runScript<[string]>(
      this.redis,
      'githaCommitCatchUp',
      [k.versions(repo), k.checksums(repo), k.writing(repo), k.log(repo)],
      [target, version, checksum, source, this.logMax, 'event', 'catch-up', 'source', source, ...flattenFields(log)],
    );
    return status;
  }

  /** First sight of a repository whose copies agree: all become leaders at version 1. */
  async adopt(repo: string, checksums: ReadonlyMap<string, string>): Promise<boolean> {
    const k = this.keys;
    const pairs = [...checksums].flat();
    const [status] = await runScript<[string]>(
      this.redis,
      'githaAdopt',
      [k.versions(repo), k.checksums(repo), k.frozen(repo), k.log(repo), k.meta(repo)],
      [this.logMax, randomUUID(), Date.now(), ...pairs],
      this.durable,
    );
    if (status === 'OK') await this.noteRepository(repo, 0);
    return status === 'OK';
  }

  /** Clears (backend unchanged) or adopts (changed) an interrupted write; the backend turns suspect until `suspectUntil`. */
  async resolveInterrupted(
    repo: string,
    token: string,
    writeId: string,
    action: 'clear' | 'adopt',
    checksum: string,
    suspectUntil: number,
    log: LogFields,
  ): Promise<{ status: string; version: number }> {
    const k = this.keys;
    const [status, version = 0] = await runScript<[string, number?]>(
      this.redis,
      'githaResolveInterrupted',
      [k.lock(repo), k.writing(repo), k.versions(repo), k.checksums(repo), k.log(repo), k.suspect(repo)],
      [token, writeId, action, checksum, suspectUntil, this.logMax, ...flattenFields(log)],
      this.durable,
    );
    return { status, version: Number(version) };
  }

  /** Ends a backend's suspect period: 'CLEARED' when its live checksum is the recorded one, else 'ADOPTED' as a new version. */
  async settleSuspect(repo: string, token: string, backend: string, liveChecksum: string): Promise<{ status: string; version: number }> {
    const k = this.keys;
    const [status, version = 0] = await runScript<[string, number?]>(
      this.redis,
      'githaSettleSuspect',
      [k.lock(repo), k.suspect(repo), k.versions(repo), k.checksums(repo), k.log(repo)],
      [token, backend, liveChecksum, this.logMax],
      this.durable,
    );
    return { status, version: Number(version) };
  }

  /** Records that `backend`'s live refs differ from its recorded `version`/`checksum`. */
  async markDrift(repo: string, backend: string, version: number, checksum: string, live: string): Promise<string> {
    const k = this.keys;
    const [status] = await runScript<[string]>(
      this.redis,
      'githaMarkDrift',
      [k.versions(repo), k.checksums(repo), k.writing(repo), k.drift(repo), k.log(repo)],
      [backend, version, checksum, live, Date.now(), this.logMax],
    );
    return status;
  }

  async clearDrift(repo: string, backend: string): Promise<void> {
    await guarded(() => this.redis.hdel(this.keys.drift(repo), backend));
  }

  /**
   * Rebuilds a repository's record from its copies (`githa recover`): one
   * checksum → every copy a leader; several → frozen as ambiguous.
   */
  async recover(
    repo: string,
    token: string,
    copies: ReadonlyMap<string, string>,
    detail: string,
  ): Promise<{ status: string; version: number }> {
    const k = this.keys;
    const mode = new Set(copies.values()).size === 1 ? 'leaders' : 'ambiguous';
    const [status, version = 0] = await runScript<[string, number?]>(
      this.redis,
      'githaRecover',
      [k.lock(repo), k.versions(repo), k.checksums(repo), k.writing(repo), k.frozen(repo), k.suspect(repo), k.drift(repo), k.meta(repo), k.log(repo)],
      [token, this.logMax, randomUUID(), Date.now(), mode, detail, ...[...copies].flat()],
      this.durable,
    );
    if (status === 'OK' || status === 'AMBIGUOUS') await this.noteRepository(repo, 0);
    return { status, version: Number(version) };
  }

  /** Redis's clock in ms: marker heartbeats are written with it, so ages are measured with it too. */
  async now(): Promise<number> {
    const [sec, usec] = await guarded(() => this.redis.time());
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }

  /** Every known repository, in pages (the replicator's and verifier's scans). */
  async *repositories(pageSize = 500): AsyncGenerator<string[]> {
    let cursor = '0';
    do {
      const [next, flat] = await guarded(() => this.redis.zscan(this.keys.repos(), cursor, 'COUNT', pageSize));
      cursor = next;
      const names = flat.filter((_, i) => i % 2 === 0);
      if (names.length > 0) yield names;
    } while (cursor !== '0');
  }

  /**
   * The push log of `repo`: newest first (oldest first with `oldestFirst`),
   * entries added at or after `sinceMs` only, at most `count`.
   */
  async readLog(repo: string, opts: { count?: number; sinceMs?: number; oldestFirst?: boolean } = {}): Promise<LogEntry[]> {
    const key = this.keys.log(repo);
    const since = opts.sinceMs !== undefined ? String(Math.max(0, Math.floor(opts.sinceMs))) : '-';
    const n = opts.count;
    const raw = await guarded(() =>
      opts.oldestFirst
        ? n !== undefined
          ? this.redis.xrange(key, since, '+', 'COUNT', n)
          : this.redis.xrange(key, since, '+')
        : n !== undefined
          ? this.redis.xrevrange(key, '+', since, 'COUNT', n)
          : this.redis.xrevrange(key, '+', since),
    );
    return raw.map(([id, flat]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      return { id, at: Number(id.split('-')[0]), fields };
    });
  }

  /** The last write (ms since epoch, 0 when never) of each repository, from the githa:repos scores. */
  async lastWrites(repos: readonly string[]): Promise<number[]> {
    if (repos.length === 0) return [];
    const scores = await guarded(() => this.redis.zmscore(this.keys.repos(), ...repos));
    return scores.map((s) => Number(s ?? 0));
  }

  /** Takes a short per-repository lock so one githa verifies a repository per interval. */
  async tryVerifyLock(repo: string, ttlMs: number): Promise<boolean> {
    const r = await guarded(() => this.redis.set(this.keys.verifyLock(repo), this.keys.prefix, 'PX', ttlMs, 'NX'));
    return r === 'OK';
  }

  /** Freezes `repo` (the first reason stays); `backends`: the ids it concerns. */
  async freeze(repo: string, reason: FreezeReason, detail: string, backends: readonly string[]): Promise<void> {
    await runScript(this.redis, 'githaFreeze', [this.keys.frozen(repo)], [reason, detail, Date.now(), backends.join(' ')], this.durable);
    await this.noteRepository(repo, 0);
  }

  /** Index of repositories and the replicators' event stream: hints, not guarded state. */
  async noteWrite(repo: string, backend: string, version: number): Promise<void> {
    await guarded(() =>
      this.redis
        .pipeline()
        .zadd(this.keys.repos(), Date.now(), repo)
        .xadd(this.keys.events(), 'MAXLEN', '~', EVENTS_MAX, '*', 'repo', repo, 'version', String(version), 'backend', backend)
        .exec(),
    );
  }

  async noteRepository(repo: string, score: number): Promise<void> {
    await guarded(() => this.redis.zadd(this.keys.repos(), 'NX', score, repo));
  }

  /** Short lock so only one githa copies a repository to one backend at a time. */
  async tryPairLock(repo: string, backend: string, token: string, ttlMs: number): Promise<boolean> {
    const r = await guarded(() => this.redis.set(this.keys.pairLock(repo, backend), token, 'PX', ttlMs, 'NX'));
    return r === 'OK';
  }

  /** Extends a held pair lock; false when it is no longer this token's (it expired and another githa took it). */
  async extendPairLock(repo: string, backend: string, token: string, ttlMs: number): Promise<boolean> {
    const key = this.keys.pairLock(repo, backend);
    const r = await guarded(() =>
      this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0", 1, key, token, ttlMs),
    );
    return r === 1;
  }

  /**
   * Takes the copy lock of (repo, backend) like tryPairLock and returns, read
   * in the same turn, the backend's recorded version (0 when none) and
   * whether a write marker names it; null when another copy holds the lock.
   */
  async acquirePairLock(repo: string, backend: string, token: string, ttlMs: number): Promise<{ version: number; writing: boolean } | null> {
    const k = this.keys;
    const reply = await runScript<[number, string?, number?]>(this.redis, 'githaAcquirePair', [k.pairLock(repo, backend), k.versions(repo), k.writing(repo)], [token, ttlMs, backend]);
    if (reply[0] !== 1) return null;
    return { version: Number(reply[1] ?? 0), writing: reply[2] === 1 };
  }

  async releasePairLock(repo: string, backend: string, token: string): Promise<void> {
    const key = this.keys.pairLock(repo, backend);
    await guarded(() =>
      this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, key, token),
    );
  }

  async ping(): Promise<void> {
    await guarded(() => this.redis.ping());
  }
}
