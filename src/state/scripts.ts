/**
 * The Lua scripts behind every multi-key state change. Each runs atomically in
 * Redis and touches only keys of one repository (one hash slot). Those that
 * finish a write are guarded by the caller's lock token and write id, so a
 * githa that lost its lock (paused past its lease) cannot commit
 * (design: "Safety rules" 1 and 4).
 *
 * Scripts answer with a status word first so callers can tell refusals apart.
 */

/** Lua: `local <name> = 1 + the highest version in the hash <key>` (every new version is above all recorded ones: safety rule 4). */
function nextVersion(name: string, key: string): string {
  return `local ${name} = 0
for _, v in ipairs(redis.call('HVALS', ${key})) do
  local n = tonumber(v)
  if n and n > ${name} then ${name} = n end
end
${name} = ${name} + 1`;
}

/** KEYS: lock, frozen, writing. ARGV: token, then field/value pairs of the marker. */
export const BEGIN_WRITE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'FROZEN'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'WRITING'} end
local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))
redis.call('HSET', KEYS[3], 'heartbeat', now, unpack(ARGV, 2))
return {'OK'}
`;

/** KEYS: lock, writing. ARGV: token, write id. Keeps the marker alive. */
export const HEARTBEAT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('HGET', KEYS[2], 'id') ~= ARGV[2] then return {'MARKER'} end
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], 'heartbeat', tostring(t[1] * 1000 + math.floor(t[2] / 1000)))
return {'OK'}
`;

/** KEYS: lock, writing. ARGV: token, write id. A write that changed no ref. */
export const ABORT_WRITE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('HGET', KEYS[2], 'id') ~= ARGV[2] then return {'MARKER'} end
redis.call('DEL', KEYS[2])
return {'OK'}
`;

/**
 * KEYS: lock, writing, versions, checksums, log.
 * ARGV: token, write id, backend, checksum, log max length, number of copies N,
 * N copy backend ids, then log field/value pairs.
 * The written backend and the copies made for the write quorum become max + 1
 * together: the leaders until the others catch up (design: "Write path" 6).
 */
export const COMMIT_WRITE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('HGET', KEYS[2], 'id') ~= ARGV[2] then return {'MARKER'} end
${nextVersion('version', 'KEYS[3]')}
local n = tonumber(ARGV[6])
local holders = {ARGV[3]}
for i = 1, n do holders[#holders + 1] = ARGV[6 + i] end
for _, b in ipairs(holders) do
  redis.call('HSET', KEYS[3], b, version)
  redis.call('HSET', KEYS[4], b, ARGV[4])
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'version', version, 'backend', ARGV[3],
  'copies', table.concat(holders, ',', 2), unpack(ARGV, 7 + n))
redis.call('DEL', KEYS[2])
return {'OK', version}
`;

/**
 * KEYS: pair lock, versions, writing. ARGV: token, lease (ms), backend.
 * Takes the per-(repository, backend) copy lock and, in the same turn, reads
 * what a copy must re-check under it: the backend's recorded version and
 * whether a write marker names it. {0} when another copy holds the lock.
 */
export const ACQUIRE_PAIR = `
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return {0} end
return {1, redis.call('HGET', KEYS[2], ARGV[3]) or '0', redis.call('HGET', KEYS[3], 'backend') == ARGV[3] and 1 or 0}
`;

/**
 * KEYS: versions, checksums, writing, log.
 * ARGV: target, version V, checksum C, source, log max length, then log field/value pairs.
 * A catch-up copy is committed only while V is still recorded with checksum C on
 * some backend (the copy equals a real version), never lowers the target's
 * version, and never touches the backend a write is in flight on.
 */
export const COMMIT_CATCH_UP = `
local target, v, c = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if redis.call('HGET', KEYS[3], 'backend') == target then return {'WRITING'} end
local current = tonumber(redis.call('HGET', KEYS[1], target) or '-1')
if current >= v then return {'CURRENT', current} end
local versions = redis.call('HGETALL', KEYS[1])
local found = false
for i = 1, #versions, 2 do
  if tonumber(versions[i + 1]) == v and redis.call('HGET', KEYS[2], versions[i]) == c then found = true end
end
if not found then return {'MOVED'} end
redis.call('HSET', KEYS[1], target, v)
redis.call('HSET', KEYS[2], target, c)
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'version', v, 'backend', target, unpack(ARGV, 6))
return {'OK', v}
`;

/**
 * KEYS: versions, checksums, frozen, log, meta. ARGV: log max length, epoch, now (ms), then backend/checksum pairs.
 * First sight of a repository whose copies all agree: every copy becomes a
 * leader at version 1, under a new epoch (so no githa mistakes the fresh
 * record for a regression of an older one).
 */
export const ADOPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'FROZEN'} end
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], 1)
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[5], 'epoch', ARGV[2], 'since', ARGV[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', 'version', 1, 'event', 'adopt')
return {'OK'}
`;

/**
 * KEYS: lock, writing, versions, checksums, log, suspect.
 * ARGV: token, write id, action ('clear' | 'adopt'), checksum, suspect until (ms), log max length, then log field/value pairs.
 * Resolves a write whose owner died (design: "Failure modes", write
 * interruption): 'clear' when the backend still has its pre-write checksum,
 * 'adopt' when it changed (the push landed: it becomes max + 1, nothing the
 * user pushed is thrown away). Either way the backend turns suspect
 * (safety rule 3). Guarded by the resolver's own lock token and the marker id.
 */
export const RESOLVE_INTERRUPTED = `
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
redis.call('HSET', KEYS[6], backend, ARGV[5])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'version', version, 'backend', backend,
  'event', ARGV[3] .. '-interrupted', unpack(ARGV, 7))
redis.call('DEL', KEYS[2])
return {'OK', version}
`;

/**
 * KEYS: lock, suspect, versions, checksums, log. ARGV: token, backend, live checksum, log max length.
 * After the grace period, a suspect backend is verified again: unchanged →
 * no longer suspect; changed while it is still a leader → the late bytes of
 * the dead write landed after all, on top of the newest acknowledged state,
 * and are adopted as a new version (nothing is thrown away).
 *
 * Changed while it is *behind* the leaders → 'STALE': nothing is adopted.
 * Pushes were acknowledged on the leaders since, and the change may as well
 * be a catch-up or quorum copy that stopped half-way; adopting it above them
 * would make replication overwrite acknowledged pushes (found by the chaos
 * checker, docs/chaos.md). The copy is stale and is caught up like any other.
 */
export const SETTLE_SUSPECT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
redis.call('HDEL', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[3] then return {'CLEARED', 0} end
${nextVersion('version', 'KEYS[3]')}
if (tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0') or 0) < version - 1 then return {'STALE', 0} end
redis.call('HSET', KEYS[3], ARGV[2], version)
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'version', version, 'backend', ARGV[2], 'event', 'adopt-late-write')
return {'ADOPTED', version}
`;

/**
 * KEYS: versions, checksums, writing, drift, log. ARGV: backend, version, recorded checksum, live checksum, now, log max length.
 * Records drift (a copy changed outside githa) only while the backend's
 * recorded version and checksum are still the ones the verifier compared
 * against, and no write is in flight.
 */
export const MARK_DRIFT = `
if redis.call('EXISTS', KEYS[3]) == 1 then return {'WRITING'} end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] or redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[3] then return {'MOVED'} end
local fresh = redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4] .. ' ' .. ARGV[5])
if fresh then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'version', ARGV[2], 'backend', ARGV[1], 'event', 'drift', 'checksum', ARGV[4])
end
return {'OK'}
`;

/**
 * KEYS: lock, versions, checksums, writing, frozen, suspect, drift, meta, log.
 * ARGV: token, log max length, epoch, now, mode ('leaders' | 'ambiguous'), detail, then backend/checksum pairs.
 * Rebuilds a repository's record from its copies' checksums (design: "Losing
 * Redis"): equal copies become leaders together at a version above anything
 * recorded, under a new epoch; differing copies freeze it as ambiguous
 * (the freeze's `backends`: the copies compared).
 */
export const RECOVER = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if ARGV[5] == 'ambiguous' then
  local ids = {}
  for i = 7, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
  redis.call('DEL', KEYS[5])
  redis.call('HSET', KEYS[5], 'reason', 'ambiguous', 'detail', ARGV[6], 'since', ARGV[4], 'backends', table.concat(ids, ' '))
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[2], '*', 'event', 'recover-ambiguous', 'detail', ARGV[6])
  return {'AMBIGUOUS', 0}
end
${nextVersion('version', 'KEYS[2]')}
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
for i = 7, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], version)
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[8], 'epoch', ARGV[3], 'since', ARGV[4])
redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[2], '*', 'version', version, 'event', 'recover', 'detail', ARGV[6])
return {'OK', version}
`;

/** KEYS: frozen. ARGV: reason, detail, since (ms), the backend ids it concerns (space-separated). Keeps the first reason. */
export const FREEZE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS'} end
redis.call('HSET', KEYS[1], 'reason', ARGV[1], 'detail', ARGV[2], 'since', ARGV[3], 'backends', ARGV[4])
return {'OK'}
`;
