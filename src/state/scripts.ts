/**
 * The Lua scripts behind every multi-key state change. Each runs atomically in
 * Redis and touches only keys of one repository (one hash slot). Those that
 * finish a write are guarded by the caller's lock token and write id, so a
 * githa that lost its lock (paused past its lease) cannot commit
 * (design: "Safety rules" 1 and 4).
 *
 * Scripts answer with a status word first so callers can tell refusals apart.
 */

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
 * ARGV: token, write id, backend, checksum, log max length, then log field/value pairs.
 * The written backend becomes max + 1: the only leader until others catch up.
 */
export const COMMIT_WRITE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('HGET', KEYS[2], 'id') ~= ARGV[2] then return {'MARKER'} end
local max = 0
for _, v in ipairs(redis.call('HVALS', KEYS[3])) do
  local n = tonumber(v)
  if n and n > max then max = n end
end
local version = max + 1
redis.call('HSET', KEYS[3], ARGV[3], version)
redis.call('HSET', KEYS[4], ARGV[3], ARGV[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'version', version, 'backend', ARGV[3], unpack(ARGV, 6))
redis.call('DEL', KEYS[2])
return {'OK', version}
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
 * KEYS: versions, checksums, frozen, log. ARGV: log max length, then backend/checksum pairs.
 * First sight of a repository whose copies all agree: every copy becomes a leader at version 1.
 */
export const ADOPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'FROZEN'} end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], 1)
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', 'version', 1, 'event', 'adopt')
return {'OK'}
`;

/** KEYS: frozen. ARGV: reason, detail, since (ms). Keeps the first reason. */
export const FREEZE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS'} end
redis.call('HSET', KEYS[1], 'reason', ARGV[1], 'detail', ARGV[2], 'since', ARGV[3])
return {'OK'}
`;
