/**
 * The Lua scripts behind the operator commands that change state
 * (`githa thaw`, `githa lock`, `githa sync`; docs/cli.md). Like those in
 * scripts.ts, each runs atomically, touches only keys of one repository (one
 * hash slot), is guarded by the caller's write-lock token, and appends one
 * entry to the push log naming the operator. They answer with a status word
 * first so callers can tell refusals apart.
 */

import { compactNewLog } from './script.js';

/** Lua: `local <name> = the highest version in the hash <key>` (0 when none). */
function maxVersion(name: string, key: string): string {
  return `local ${name} = 0
for _, v in ipairs(redis.call('HVALS', ${key})) do
  local n = tonumber(v)
  if n and n > ${name} then ${name} = n end
end`;
}

/**
 * KEYS: lock, versions, checksums, writing, frozen, suspect, drift, meta, log.
 * ARGV: token, backend, expected version of the backend ('' = none), expected
 * max, freeze reason to lift ('' = none), log max length, epoch, now (ms),
 * then log field/value pairs.
 * `githa thaw R --demote B`: B stops being a leader and githa forgets what
 * only B had: its version and checksum, an interrupted write on it, the freeze
 * that concerned it, its suspect and drift entries. The state must still be
 * what the operator was shown (B's version and the maximum), else 'MOVED'.
 * When the maximum goes down, the record gets a new epoch, so no githa takes
 * the deliberate change for Redis going back in time (docs/operations.md "Redis lost or restored from an old snapshot").
 */
export const THAW_DEMOTE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
local b = ARGV[2]
local mine = redis.call('HGET', KEYS[2], b) or ''
if mine ~= ARGV[3] then return {'MOVED'} end
${maxVersion('before', 'KEYS[2]')}
if before ~= tonumber(ARGV[4]) then return {'MOVED'} end
redis.call('HDEL', KEYS[2], b)
redis.call('HDEL', KEYS[3], b)
local marker = ''
if redis.call('HGET', KEYS[4], 'backend') == b then
  marker = redis.call('HGET', KEYS[4], 'id') or ''
  redis.call('DEL', KEYS[4])
end
local lifted = ''
if ARGV[5] ~= '' and redis.call('HGET', KEYS[5], 'reason') == ARGV[5] then
  redis.call('DEL', KEYS[5])
  lifted = ARGV[5]
end
redis.call('HDEL', KEYS[6], b)
redis.call('HDEL', KEYS[7], b)
${maxVersion('after', 'KEYS[2]')}
if after < before then redis.call('HSET', KEYS[8], 'epoch', ARGV[7], 'since', ARGV[8]) end
redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[6], '*', 'version', after, 'backend', b, 'event', 'thaw-demote',
  'removed', mine, 'previousMax', before, 'marker', marker, 'lifted', lifted, unpack(ARGV, 9))
${compactNewLog('KEYS[9]')}
return {'OK', after, marker, lifted}
`;

/**
 * KEYS: lock, versions, checksums, writing, frozen, suspect, drift, meta, log.
 * ARGV: token, backend, live checksum, log max length, epoch, now (ms), then log field/value pairs.
 * `githa thaw R --promote B`: only while githa cannot tell which copy is
 * right (frozen as ambiguous, or no leader that is not drifted): B's live copy
 * becomes the only leader at a version above everything recorded, the freeze
 * is lifted, an interrupted write, suspect and drift entries are discarded;
 * every other copy is stale and replication overwrites it.
 */
export const THAW_PROMOTE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
local reason = redis.call('HGET', KEYS[5], 'reason') or ''
if reason == 'maintenance' then return {'MAINTENANCE'} end
${maxVersion('max', 'KEYS[2]')}
local leaders = 0
if max > 0 then
  local versions = redis.call('HGETALL', KEYS[2])
  for i = 1, #versions, 2 do
    if tonumber(versions[i + 1]) == max and redis.call('HEXISTS', KEYS[7], versions[i]) == 0 then leaders = leaders + 1 end
  end
end
if reason ~= 'ambiguous' and leaders > 0 then return {'UNAMBIGUOUS', max} end
local marker = redis.call('HGET', KEYS[4], 'backend') or ''
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7])
local version = max + 1
redis.call('HSET', KEYS[2], ARGV[2], version)
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
if redis.call('EXISTS', KEYS[8]) == 0 then redis.call('HSET', KEYS[8], 'epoch', ARGV[5], 'since', ARGV[6]) end
redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[4], '*', 'version', version, 'backend', ARGV[2], 'event', 'thaw-promote',
  'checksum', ARGV[3], 'lifted', reason, 'marker', marker, unpack(ARGV, 7))
${compactNewLog('KEYS[9]')}
return {'OK', version}
`;

/**
 * KEYS: lock, frozen, writing, log. ARGV: token, detail, now (ms), log max length, backend, then log field/value pairs.
 * `githa lock R --backend B`: freezes R for `maintenance` (concerning B)
 * while the operator holds its write lock, so pushes are refused at once with a clear message
 * instead of waiting for the lock. Refused when frozen for another reason or
 * when an interrupted write is unresolved. A maintenance freeze left by a
 * `githa lock` that died is taken over: whoever holds the write lock now is
 * the only maintainer.
 */
export const MAINTENANCE_BEGIN = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
local reason = redis.call('HGET', KEYS[2], 'reason')
if redis.call('EXISTS', KEYS[2]) == 1 and reason ~= 'maintenance' then return {'FROZEN', reason or ''} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'WRITING', redis.call('HGET', KEYS[3], 'backend') or ''} end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'reason', 'maintenance', 'detail', ARGV[2], 'since', ARGV[3], 'backends', ARGV[5])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'backend', ARGV[5], 'event', 'maintenance', 'phase', 'lock', unpack(ARGV, 6))
${compactNewLog('KEYS[4]')}
return {'OK'}
`;

/**
 * KEYS: lock, versions, checksums, frozen, suspect, drift, log.
 * ARGV: token, backend, live checksum ('' = keep the record as it is), log max length, then log field/value pairs.
 * Release of a maintenance lock: the operator vouched for B, so B becomes
 * the leader at max + 1 with the checksum read now (even if unchanged) and
 * is no longer drifted or suspect; the maintenance freeze is lifted. Without
 * a checksum (B unreachable) only the freeze is lifted.
 */
export const MAINTENANCE_RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
local version = 0
if ARGV[3] ~= '' then
  ${maxVersion('max', 'KEYS[2]')}
  version = max + 1
  redis.call('HSET', KEYS[2], ARGV[2], version)
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  redis.call('HDEL', KEYS[5], ARGV[2])
  redis.call('HDEL', KEYS[6], ARGV[2])
end
local lifted = 0
if redis.call('HGET', KEYS[4], 'reason') == 'maintenance' then
  redis.call('DEL', KEYS[4])
  lifted = 1
end
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[4], '*', 'version', version, 'backend', ARGV[2], 'event', 'maintenance',
  'phase', 'release', 'checksum', ARGV[3], unpack(ARGV, 5))
${compactNewLog('KEYS[7]')}
return {'OK', version, lifted}
`;

/**
 * KEYS: lock, versions, checksums, writing, drift, log.
 * ARGV: token, target, version V, checksum C, source, log max length, then log field/value pairs.
 * `githa sync`: records a copy made under the write lock: the target holds V
 * (still recorded with C on some backend) and is no longer drifted. A
 * drifted target already recorded at V with C just loses its drift entry.
 */
export const SYNC_COMMIT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
local target, v, c = ARGV[2], tonumber(ARGV[3]), ARGV[4]
if redis.call('HGET', KEYS[4], 'backend') == target then return {'WRITING'} end
local current = tonumber(redis.call('HGET', KEYS[2], target) or '-1')
if current > v then return {'CURRENT', current} end
local found = current == v and redis.call('HGET', KEYS[3], target) == c
local versions = redis.call('HGETALL', KEYS[2])
for i = 1, #versions, 2 do
  if tonumber(versions[i + 1]) == v and redis.call('HGET', KEYS[3], versions[i]) == c then found = true end
end
if not found then return {'MOVED'} end
redis.call('HSET', KEYS[2], target, v)
redis.call('HSET', KEYS[3], target, c)
local drifted = redis.call('HDEL', KEYS[5], target)
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[6], '*', 'version', v, 'backend', target, 'event', 'sync',
  'source', ARGV[5], 'drift', drifted, unpack(ARGV, 7))
${compactNewLog('KEYS[6]')}
return {'OK', v}
`;
