import { compactNewLog, flattenFields, replyOf, type ScriptDescriptor } from '../script.js';

/*
 * The scripts of a copy between backends (docs/architecture.md "Catch-up
 * relay"): the per-(repository, target) copy lock, its fence, and the record
 * of a finished catch-up.
 */

/** What Redis records for a copy's target, read under its copy lock. */
export interface Standing {
  /** The target's recorded version (0 when none). */
  version: number;
  /** A write marker names the target as the backend written to. */
  writing: boolean;
  /** The target's recorded checksum ('' when none): what its copy must hold before anything overwrites it (docs/architecture.md "Verified copies"). */
  checksum: string;
  /**
   * What a catch-up of githa's own copied there without being able to record
   * it (COMMIT_CATCH_UP answered MOVED), while the record is still the one it
   * found: the copy holds a newer state githa made, not a change from outside.
   */
  unrecorded?: string;
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString() : '';
}

function standing(version: unknown, writing: unknown, checksum: unknown, unrecorded?: unknown): Standing {
  const s: Standing = { version: Number(version ?? 0), writing: writing === 1, checksum: text(checksum) };
  // "<recorded version> <checksum>": only while the record is still at that version.
  const [at, sum] = text(unrecorded).split(' ');
  if (sum && Number(at) === s.version) s.unrecorded = sum;
  return s;
}

/**
 * Takes the copy lock of (repo, backend) and reads, in the same turn, what
 * the copy must not go behind: the target's version and whether a write is
 * in flight on it. null when another copy holds the lock.
 */
export const ACQUIRE_PAIR: ScriptDescriptor<[backend: string, token: string, ttlMs: number], Standing | null> = {
  name: 'githaAcquirePair',
  lua: `
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return {0} end
return {1, redis.call('HGET', KEYS[2], ARGV[3]) or '0', redis.call('HGET', KEYS[3], 'backend') == ARGV[3] and 1 or 0, redis.call('HGET', KEYS[4], ARGV[3]) or '', redis.call('HGET', KEYS[5], ARGV[3]) or ''}
`,
  keys: (k, repo, backend) => [k.pairLock(repo, backend), k.versions(repo), k.writing(repo), k.checksums(repo), k.unrecorded(repo)],
  args: (backend, token, ttlMs) => [token, ttlMs, backend],
  parse: (reply) => {
    const [held, version, writing, checksum, unrecorded] = replyOf(reply);
    return held === 1 ? standing(version, writing, checksum, unrecorded) : null;
  },
};

/**
 * The fence of a copy, run after the target's advertisement was read and
 * before the push that carries its old ids: the copy lock is still this
 * token's (and its lease is extended), and the target's record is what it
 * was when the lock was taken. A pause before this check fails it; a pause
 * after it fails git's per-ref compare-and-swap on the old ids already read.
 */
export const FENCE_PAIR: ScriptDescriptor<[backend: string, token: string, ttlMs: number], Standing | null> = {
  name: 'githaFencePair',
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, redis.call('HGET', KEYS[2], ARGV[3]) or '0', redis.call('HGET', KEYS[3], 'backend') == ARGV[3] and 1 or 0, redis.call('HGET', KEYS[4], ARGV[3]) or '', redis.call('HGET', KEYS[5], ARGV[3]) or ''}
`,
  keys: (k, repo, backend) => [k.pairLock(repo, backend), k.versions(repo), k.writing(repo), k.checksums(repo), k.unrecorded(repo)],
  args: (backend, token, ttlMs) => [token, ttlMs, backend],
  parse: (reply) => {
    const [held, version, writing, checksum, unrecorded] = replyOf(reply);
    return held === 1 ? standing(version, writing, checksum, unrecorded) : null;
  },
};

/** Extends a copy lock: false when it is no longer this token's. */
export const EXTEND_PAIR: ScriptDescriptor<[backend: string, token: string, ttlMs: number], boolean> = {
  name: 'githaExtendPair',
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`,
  keys: (k, repo, backend) => [k.pairLock(repo, backend)],
  args: (_backend, token, ttlMs) => [token, ttlMs],
  parse: (reply) => replyOf(reply)[0] === 1,
};

/** Frees a copy lock if it is still this token's. */
export const RELEASE_PAIR: ScriptDescriptor<[backend: string, token: string], boolean> = {
  name: 'githaReleasePair',
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
  keys: (k, repo, backend) => [k.pairLock(repo, backend)],
  args: (_backend, token) => [token],
  parse: (reply) => replyOf(reply)[0] === 1,
};

export interface CommitCatchUpArgs {
  target: string;
  version: number;
  checksum: string;
  source: string;
  /** The target is a move's (src/cluster/move.ts), outside the assignment on purpose: recorded all the same. */
  moveTarget?: boolean | undefined;
  logMax: number;
  log: Record<string, string | number>;
}

export type CommitCatchUpResult =
  | { kind: 'ok'; version: number }
  /** The target records that version or a later one already. */
  | { kind: 'current'; version: number }
  /** No backend records that version with that checksum any more. */
  | { kind: 'moved' }
  /** A write is in flight on the target. */
  | { kind: 'writing' }
  /** The repository has an assignment the target is not in (switched out by a move meanwhile), and no move copies into it. */
  | { kind: 'unassigned' };

/**
 * A catch-up is recorded only while its version is still recorded with its
 * checksum on some backend (the copy equals a real version), never lowers
 * the target's version, and never touches the backend a write is in flight on.
 * With an assignment, only an assigned target is recorded, or a move's target
 * (the caller says so): a copy that was running when a move switched its
 * target out must not record a copy the move trashes (docs/architecture.md
 * "Moving a repository").
 */
export const COMMIT_CATCH_UP: ScriptDescriptor<[CommitCatchUpArgs], CommitCatchUpResult> = {
  name: 'githaCommitCatchUp',
  durable: true,
  lua: `
local target, v, c = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if redis.call('HGET', KEYS[3], 'backend') == target then return {'WRITING'} end
if ARGV[6] ~= '1' and redis.call('EXISTS', KEYS[6]) == 1 and redis.call('HEXISTS', KEYS[6], target) == 0 then return {'UNASSIGNED'} end
local current = tonumber(redis.call('HGET', KEYS[1], target) or '-1')
if current >= v then return {'CURRENT', current} end
local versions = redis.call('HGETALL', KEYS[1])
local found = false
for i = 1, #versions, 2 do
  if tonumber(versions[i + 1]) == v and redis.call('HGET', KEYS[2], versions[i]) == c then found = true end
end
if not found then
  -- The copy landed, its version was superseded before it could be recorded: note that the target now holds
  -- githa's own state c (read under the next copy lock while the record stays at 'current'), so neither the
  -- verifier nor the next copy takes it for a change from outside.
  if current >= 0 then redis.call('HSET', KEYS[5], target, current .. ' ' .. c) end
  return {'MOVED'}
end
redis.call('HDEL', KEYS[5], target)
redis.call('HSET', KEYS[1], target, v)
redis.call('HSET', KEYS[2], target, c)
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'version', v, 'backend', target, unpack(ARGV, 7))
${compactNewLog('KEYS[4]')}
return {'OK', v}
`,
  keys: (k, repo) => [k.versions(repo), k.checksums(repo), k.writing(repo), k.log(repo), k.unrecorded(repo), k.assigned(repo)],
  args: (a) => [a.target, a.version, a.checksum, a.source, a.logMax, a.moveTarget ? '1' : '0', 'event', 'catch-up', 'source', a.source, ...flattenFields(a.log)],
  parse: (reply) => {
    const [s, v] = replyOf(reply);
    if (s === 'OK') return { kind: 'ok', version: Number(v) };
    if (s === 'CURRENT') return { kind: 'current', version: Number(v) };
    if (s === 'UNASSIGNED') return { kind: 'unassigned' };
    return s === 'WRITING' ? { kind: 'writing' } : { kind: 'moved' };
  },
};
