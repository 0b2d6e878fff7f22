import { compactNewLog, flattenFields, nextVersion, replyOf, type ScriptDescriptor } from '../script.js';
import type { FreezeReason } from '../repo-state.js';

/*
 * The scripts that repair or rebuild a repository's record: adoption,
 * resolving an interrupted write, settling a suspect backend, drift, recovery
 * and freezes (docs/architecture.md "Failure handling", docs/redis.md).
 */

/** A status word and, when one was written, a version. */
export interface Versioned<S extends string> {
  status: S;
  version: number;
}

function versioned<S extends string>(words: Record<string, S>, fallback: S) {
  return (reply: unknown): Versioned<S> => {
    const [s, v] = replyOf(reply);
    return { status: words[String(s)] ?? fallback, version: Number(v ?? 0) };
  };
}

/**
 * First sight of a repository whose copies all agree: every copy becomes a
 * leader at version 1, under a new epoch (so no githa mistakes the fresh
 * record for a regression of an older one).
 */
export const ADOPT: ScriptDescriptor<
  [logMax: number, epoch: string, now: number, copies: ReadonlyMap<string, string>, placed?: { assigned: readonly string[]; factor: number }],
  'ok' | 'exists' | 'frozen'
> = {
  name: 'githaAdopt',
  durable: true,
  // With a factor, the assignment (docs/architecture.md "Placement") is written in the same step: ARGV[4] its backends (space-separated), ARGV[5] the factor.
  lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'FROZEN'} end
if ARGV[4] ~= '' then
  redis.call('DEL', KEYS[6])
  for id in string.gmatch(ARGV[4], '%S+') do redis.call('HSET', KEYS[6], id, ARGV[3]) end
  redis.call('HSET', KEYS[5], 'factor', ARGV[5])
end
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], 1)
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[5], 'epoch', ARGV[2], 'since', ARGV[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', 'version', 1, 'event', 'adopt')
${compactNewLog('KEYS[4]')}
return {'OK'}
`,
  keys: (k, repo) => [k.versions(repo), k.checksums(repo), k.frozen(repo), k.log(repo), k.meta(repo), k.assigned(repo)],
  args: (logMax, epoch, now, copies, placed) => [logMax, epoch, now, placed?.assigned.join(' ') ?? '', placed?.factor ?? '', ...[...copies].flat()],
  parse: (reply) => {
    const s = replyOf(reply)[0];
    return s === 'OK' ? 'ok' : s === 'EXISTS' ? 'exists' : 'frozen';
  },
};

export interface ResolveArgs {
  token: string;
  writeId: string;
  /** 'drift': the copy changed, but not only by the write's commands (or they are unknown to a caller that drifts it). */
  action: 'clear' | 'adopt' | 'drift';
  checksum: string;
  suspectUntil: number;
  logMax: number;
  log: Record<string, string | number>;
}

/**
 * Resolves a write whose owner died: 'clear' when the backend still has its
 * pre-write checksum; 'adopt' when it changed by exactly the write's commands
 * (the push landed: it becomes max + 1, nothing the user pushed is thrown
 * away); 'drift' when it changed otherwise (its refs outside the write's
 * commands are not the recorded ones): nothing is adopted, the copy is
 * recorded drifted (it leads no more; its repair keeps what it holds).
 * Either way the backend turns suspect, and so do the backends the marker
 * names as quorum-copy targets: a copy may have landed on them. Each suspect
 * entry keeps the marker's command list, when it had one (`suspect-writes`),
 * for the settling. Guarded by the resolver's own lock token and the marker id.
 */
export const RESOLVE_INTERRUPTED: ScriptDescriptor<[ResolveArgs], Versioned<'ok' | 'lock' | 'marker'>> = {
  name: 'githaResolveInterrupted',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('HGET', KEYS[2], 'id') ~= ARGV[2] then return {'MARKER'} end
local backend = redis.call('HGET', KEYS[2], 'backend')
${nextVersion('adopted', 'KEYS[3]')}
local version = 0
if ARGV[3] == 'adopt' then
  version = adopted
  redis.call('HSET', KEYS[3], backend, version)
  redis.call('HSET', KEYS[4], backend, ARGV[4])
end
if ARGV[3] == 'drift' then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[7], backend, ARGV[4] .. ' ' .. tostring(t[1] * 1000 + math.floor(t[2] / 1000)))
end
local commands = redis.call('HGET', KEYS[2], 'commands')
local holders = {backend}
for b in string.gmatch(redis.call('HGET', KEYS[2], 'copies') or '', '%S+') do holders[#holders + 1] = b end
for _, b in ipairs(holders) do
  redis.call('HSET', KEYS[6], b, ARGV[5])
  if commands then redis.call('HSET', KEYS[8], b, ARGV[5] .. '\\n' .. commands) else redis.call('HDEL', KEYS[8], b) end
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'version', version, 'backend', backend,
  'event', ARGV[3] .. '-interrupted', unpack(ARGV, 7))
${compactNewLog('KEYS[5]')}
redis.call('DEL', KEYS[2])
return {'OK', version}
`,
  keys: (k, repo) => [k.lock(repo), k.writing(repo), k.versions(repo), k.checksums(repo), k.log(repo), k.suspect(repo), k.drift(repo), k.suspectWrites(repo)],
  args: (a) => [a.token, a.writeId, a.action, a.checksum, a.suspectUntil, a.logMax, ...flattenFields(a.log)],
  parse: versioned({ OK: 'ok', LOCK: 'lock', MARKER: 'marker' }, 'marker'),
};

export interface SettleArgs {
  token: string;
  backend: string;
  /** The suspect entry (until, ms) the caller found due: a fresher one is left alone. */
  until: number;
  liveChecksum: string;
  /**
   * The live refs with the interrupted write's commands undone (its checksum),
   * or '' when its commands are unknown: late bytes are adopted only when this
   * is the recorded checksum.
   */
  baseChecksum: string;
  logMax: number;
}

export type SettleStatus = 'cleared' | 'adopted' | 'stale' | 'drifted' | 'lock' | 'renewed';

/**
 * After the grace period, a suspect backend is verified again: unchanged →
 * no longer suspect; changed while it is still a leader, by exactly the
 * interrupted write's commands (its refs outside them are the recorded ones)
 * → the late bytes of the dead write landed after all, on top of the newest
 * acknowledged state, and are adopted as a new version (nothing is thrown
 * away). Changed otherwise, or with the write's commands unknown → 'drifted':
 * nothing is adopted, the copy is recorded drifted and repaired (the repair
 * keeps what it holds). Changed while it is behind the leaders → 'stale':
 * nothing is adopted (it may as well be a copy that stopped half-way:
 * docs/chaos.md); it is caught up like any other. Cleared or adopted, the
 * backend's drift entry goes too: its live refs are now what the record says.
 * A suspect entry set again since the caller read it (a newer interruption)
 * is kept: its grace period is not cut short.
 */
export const SETTLE_SUSPECT: ScriptDescriptor<[SettleArgs], Versioned<SettleStatus>> = {
  name: 'githaSettleSuspect',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[5] then return {'RENEWED', 0} end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[7], ARGV[2])
local recorded = redis.call('HGET', KEYS[4], ARGV[2])
if recorded == ARGV[3] then
  redis.call('HDEL', KEYS[6], ARGV[2])
  return {'CLEARED', 0}
end
${nextVersion('version', 'KEYS[3]')}
if (tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0') or 0) < version - 1 then return {'STALE', 0} end
if ARGV[6] == '' or recorded ~= ARGV[6] then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[6], ARGV[2], ARGV[3] .. ' ' .. tostring(t[1] * 1000 + math.floor(t[2] / 1000)))
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'version', redis.call('HGET', KEYS[3], ARGV[2]), 'backend', ARGV[2], 'event', 'drift', 'checksum', ARGV[3])
  ${compactNewLog('KEYS[5]')}
  return {'DRIFTED', 0}
end
redis.call('HSET', KEYS[3], ARGV[2], version)
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
redis.call('HDEL', KEYS[6], ARGV[2])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'version', version, 'backend', ARGV[2], 'event', 'adopt-late-write')
${compactNewLog('KEYS[5]')}
return {'ADOPTED', version}
`,
  keys: (k, repo) => [k.lock(repo), k.suspect(repo), k.versions(repo), k.checksums(repo), k.log(repo), k.drift(repo), k.suspectWrites(repo)],
  args: (a) => [a.token, a.backend, a.liveChecksum, a.logMax, String(a.until), a.baseChecksum],
  parse: versioned({ CLEARED: 'cleared', ADOPTED: 'adopted', STALE: 'stale', DRIFTED: 'drifted', LOCK: 'lock', RENEWED: 'renewed' }, 'lock'),
};

export interface DriftArgs {
  backend: string;
  version: number;
  checksum: string;
  live: string;
  now: number;
  logMax: number;
  /** What kind of drift, when known (DriftKind); '' = not known yet. */
  kind?: string;
}

/**
 * Records drift (a copy changed outside githa) only while the backend's
 * recorded version and checksum are still the ones the verifier compared
 * against, and no write is in flight.
 */
export const MARK_DRIFT: ScriptDescriptor<[DriftArgs], 'ok' | 'writing' | 'moved'> = {
  name: 'githaMarkDrift',
  lua: `
if redis.call('EXISTS', KEYS[3]) == 1 then return {'WRITING'} end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] or redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[3] then return {'MOVED'} end
local fresh = redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0
local kind = ''
if ARGV[7] ~= '' then kind = ' ' .. ARGV[7] end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4] .. ' ' .. ARGV[5] .. kind)
if fresh then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'version', ARGV[2], 'backend', ARGV[1], 'event', 'drift', 'checksum', ARGV[4])
  ${compactNewLog('KEYS[5]')}
end
return {'OK'}
`,
  keys: (k, repo) => [k.versions(repo), k.checksums(repo), k.writing(repo), k.drift(repo), k.log(repo)],
  args: (a) => [a.backend, a.version, a.checksum, a.live, a.now, a.logMax, a.kind ?? ''],
  parse: (reply) => {
    const s = replyOf(reply)[0];
    return s === 'OK' ? 'ok' : s === 'WRITING' ? 'writing' : 'moved';
  },
};

/**
 * The repairer's findings on a drifted copy: its live value (a checksum or
 * 'missing') and its kind, written over an existing drift entry only (its
 * time is kept); no entry, nothing written (the drift was resolved meanwhile).
 */
export const NOTE_DRIFT: ScriptDescriptor<[backend: string, live: string, kind: string], 'ok' | 'gone'> = {
  name: 'githaNoteDrift',
  lua: `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return {'GONE'} end
local at = string.match(v, '^%S+ (%S+)') or '0'
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. at .. ' ' .. ARGV[3])
return {'OK'}
`,
  keys: (k, repo) => [k.drift(repo)],
  args: (backend, live, kind) => [backend, live, kind],
  parse: (reply) => (replyOf(reply)[0] === 'OK' ? 'ok' : 'gone'),
};

export interface RecoverArgs {
  token: string;
  logMax: number;
  epoch: string;
  now: number;
  detail: string;
  copies: ReadonlyMap<string, string>;
  /**
   * With `replication.factor`: the assignment chosen by placement among the
   * holders, and the factor (docs/architecture.md "Placement"). Absent: no
   * assignment (every backend holds it).
   */
  placed?: { assigned: readonly string[]; factor: number } | undefined;
}

/**
 * Rebuilds a repository's record from its copies' checksums (`githa
 * recover`): equal copies become leaders together at a version above
 * anything recorded, under a new epoch; differing copies freeze it as
 * ambiguous, naming every copy's backend. With `placed`, the assignment and
 * `meta` `factor` are written in the same step as the versions (so no reader
 * sees the record without them; docs/architecture.md "Placement"); without,
 * an assignment, factor and `replacing` a restored snapshot kept are removed:
 * the copies are what is true. The freeze changes no assignment.
 */
export const RECOVER: ScriptDescriptor<[RecoverArgs], Versioned<'ok' | 'ambiguous' | 'lock'>> = {
  name: 'githaRecover',
  durable: true,
  // ARGV[7]: the assigned backends (space-separated; '' none), ARGV[8] the factor; the copies (id, checksum) from ARGV[9].
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if ARGV[5] == 'ambiguous' then
  local ids = {}
  for i = 9, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
  redis.call('DEL', KEYS[5])
  redis.call('HSET', KEYS[5], 'reason', 'ambiguous', 'detail', ARGV[6], 'since', ARGV[4], 'backends', table.concat(ids, ' '))
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[2], '*', 'event', 'recover-ambiguous', 'detail', ARGV[6])
  ${compactNewLog('KEYS[9]')}
  return {'AMBIGUOUS', 0}
end
${nextVersion('version', 'KEYS[2]')}
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[10], KEYS[11])
for i = 9, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], version)
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
if ARGV[7] ~= '' then
  for id in string.gmatch(ARGV[7], '%S+') do redis.call('HSET', KEYS[10], id, ARGV[4]) end
  redis.call('HSET', KEYS[8], 'factor', ARGV[8])
else
  redis.call('HDEL', KEYS[8], 'factor')
end
redis.call('HSET', KEYS[8], 'epoch', ARGV[3], 'since', ARGV[4])
redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[2], '*', 'version', version, 'event', 'recover', 'detail', ARGV[6])
${compactNewLog('KEYS[9]')}
return {'OK', version}
`,
  keys: (k, repo) => [
    k.lock(repo),
    k.versions(repo),
    k.checksums(repo),
    k.writing(repo),
    k.frozen(repo),
    k.suspect(repo),
    k.drift(repo),
    k.meta(repo),
    k.log(repo),
    k.assigned(repo),
    k.replacing(repo),
  ],
  args: (a) => [
    a.token,
    a.logMax,
    a.epoch,
    a.now,
    new Set(a.copies.values()).size === 1 ? 'leaders' : 'ambiguous',
    a.detail,
    a.placed?.assigned.join(' ') ?? '',
    a.placed?.factor ?? '',
    ...[...a.copies].flat(),
  ],
  parse: versioned({ OK: 'ok', AMBIGUOUS: 'ambiguous', LOCK: 'lock' }, 'lock'),
};

/** Freezes a repository, keeping the first reason; `backends` are the ids the freeze concerns (docs/redis.md). */
export const FREEZE: ScriptDescriptor<[reason: FreezeReason, detail: string, since: number, backends: readonly string[]], 'ok' | 'exists'> = {
  name: 'githaFreeze',
  durable: true,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS'} end
redis.call('HSET', KEYS[1], 'reason', ARGV[1], 'detail', ARGV[2], 'since', ARGV[3], 'backends', ARGV[4])
return {'OK'}
`,
  keys: (k, repo) => [k.frozen(repo)],
  args: (reason, detail, since, backends) => [reason, detail, since, backends.join(' ')],
  parse: (reply) => (replyOf(reply)[0] === 'OK' ? 'ok' : 'exists'),
};
