import type { Keys } from '../keys.js';
import { flattenFields, replyOf, type ScriptDescriptor } from '../script.js';

/*
 * The scripts of the repository lifecycle (docs/operations.md "Repository
 * lifecycle", docs/redis.md `gone`): create, the tombstone of a delete or a
 * rename, restore, and a rename's new record. Each writes its push-log
 * entry in the same step; all but CREATE are guarded by the caller's
 * write-lock token (as RECOVER is).
 */

type Fields = Record<string, string | number>;

/** Backend, version, checksum triples as a flat argument list, after their count. */
function triples(versions: ReadonlyMap<string, number>, checksums: ReadonlyMap<string, string>): (string | number)[] {
  const ids = [...versions.keys()].sort();
  return [ids.length, ...ids.flatMap((b) => [b, versions.get(b)!, checksums.get(b) ?? ''])];
}

function status<S extends string>(words: Record<string, S>, fallback: S) {
  return (reply: unknown): S => words[String(replyOf(reply)[0])] ?? fallback;
}

/** Lua: HSET of the triples starting at ARGV[<at>] (their count), into versions KEYS[v] and checksums KEYS[c]; `after` = the next ARGV index. */
function putTriples(at: number, v: number, c: number): string {
  return `local n = tonumber(ARGV[${at}])
for i = 0, n - 1 do
  local j = ${at + 1} + i * 3
  redis.call('HSET', KEYS[${v}], ARGV[j], ARGV[j + 1])
  redis.call('HSET', KEYS[${c}], ARGV[j], ARGV[j + 2])
end
local after = ${at + 1} + n * 3`;
}

export interface CreateArgs {
  backends: readonly string[];
  emptyChecksum: string;
  epoch: string;
  now: number;
  logMax: number;
  log: Fields;
  /** The assignment (docs/redis.md `assigned`), written with the versions; absent: every backend. */
  assigned?: readonly string[] | undefined;
  /** Its replication factor, in `meta` `factor`. */
  factor?: number | undefined;
}

/**
 * A repository just created on `backends` (`githa create`): each at version
 * 1 with the empty checksum, under a new epoch, with its assignment and
 * factor (docs/architecture.md "Placement") in the same step, so no read
 * sees it without them. Refused when a record or a freeze is there
 * ('exists') or a tombstone ('gone').
 */
export const CREATE: ScriptDescriptor<[CreateArgs], 'ok' | 'exists' | 'gone'> = {
  name: 'githaCreate',
  durable: true,
  lua: `
if redis.call('EXISTS', KEYS[4]) == 1 then return {'GONE'} end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then return {'EXISTS'} end
local n = tonumber(ARGV[5])
for i = 1, n do
  redis.call('HSET', KEYS[1], ARGV[5 + i], 1)
  redis.call('HSET', KEYS[2], ARGV[5 + i], ARGV[4])
end
redis.call('HSET', KEYS[5], 'epoch', ARGV[2], 'since', ARGV[3])
local m = tonumber(ARGV[6 + n])
redis.call('DEL', KEYS[7])
for i = 1, m do redis.call('HSET', KEYS[7], ARGV[6 + n + i], ARGV[3]) end
if ARGV[7 + n + m] ~= '' then redis.call('HSET', KEYS[5], 'factor', ARGV[7 + n + m]) end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[1], '*', 'version', 1, unpack(ARGV, 8 + n + m))
return {'OK'}
`,
  keys: (k: Keys, repo: string) => [k.versions(repo), k.checksums(repo), k.frozen(repo), k.gone(repo), k.meta(repo), k.log(repo), k.assigned(repo)],
  args: (a) => [
    a.logMax,
    a.epoch,
    a.now,
    a.emptyChecksum,
    a.backends.length,
    ...a.backends,
    a.assigned?.length ?? 0,
    ...(a.assigned ?? []),
    a.factor ?? '',
    ...flattenFields(a.log),
  ],
  parse: status({ OK: 'ok', EXISTS: 'exists', GONE: 'gone' }, 'exists'),
};

/** The tombstone alone (a delete or rename begins: every read and push is refused from now); the record stays. */
export const MARK_GONE: ScriptDescriptor<[token: string, gone: Record<string, string>], 'ok' | 'lock'> = {
  name: 'githaMarkGone',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
local record = redis.call('HGET', KEYS[2], 'record')
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
if record and redis.call('HEXISTS', KEYS[2], 'record') == 0 then redis.call('HSET', KEYS[2], 'record', record) end
return {'OK'}
`,
  keys: (k, repo) => [k.lock(repo), k.gone(repo)],
  args: (token, gone) => [token, ...flattenFields(gone)],
  parse: status({ OK: 'ok', LOCK: 'lock' }, 'lock'),
};

export interface RetireArgs {
  token: string;
  gone: Record<string, string>;
  logMax: number;
  log: Fields;
}

/**
 * The end of a delete or rename: the tombstone written (keeping the record
 * the repository had, as JSON in its `record` field: from the versions and
 * checksums when they are still there, else the one a previous run saved)
 * and every record removed but the push log, which gets the entry.
 */
export const RETIRE: ScriptDescriptor<[RetireArgs], 'ok' | 'lock'> = {
  name: 'githaRetire',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
local record = redis.call('HGET', KEYS[10], 'record')
if redis.call('EXISTS', KEYS[2]) == 1 then
  local function map(key)
    local flat = redis.call('HGETALL', key)
    local m = {}
    for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
    return m
  end
  local versions = map(KEYS[2])
  local checksums = map(KEYS[3])
  record = cjson.encode({versions = versions, checksums = checksums})
end
local n = tonumber(ARGV[3])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[12])
redis.call('HSET', KEYS[10], unpack(ARGV, 4, 3 + n * 2))
if record then redis.call('HSET', KEYS[10], 'record', record) end
redis.call('XADD', KEYS[11], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 4 + n * 2))
return {'OK'}
`,
  keys: (k, repo) => [
    k.lock(repo),
    k.versions(repo),
    k.checksums(repo),
    k.writing(repo),
    k.frozen(repo),
    k.suspect(repo),
    k.suspectWrites(repo),
    k.drift(repo),
    k.meta(repo),
    k.gone(repo),
    k.log(repo),
    k.assigned(repo),
  ],
  args: (a) => [a.token, a.logMax, Object.keys(a.gone).length, ...flattenFields(a.gone), ...flattenFields(a.log)],
  parse: status({ OK: 'ok', LOCK: 'lock' }, 'lock'),
};

export interface ReviveArgs {
  token: string;
  /** A restore: the record put back in the same step (refused 'exists' when the repository has one already). */
  record?: { versions: ReadonlyMap<string, number>; checksums: ReadonlyMap<string, string> } | undefined;
  epoch: string;
  now: number;
  logMax: number;
  log: Fields;
}

/**
 * Removes the tombstone: a restore (with the saved record put back at once,
 * so no read ever finds the repository with neither), or a delete or
 * rename that could not go on (the record never left).
 */
export const REVIVE: ScriptDescriptor<[ReviveArgs], 'ok' | 'lock' | 'exists'> = {
  name: 'githaRevive',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
local n = tonumber(ARGV[5])
local after = 6 + n * 3
if ARGV[2] == 'record' then
  if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then return {'EXISTS'} end
  for i = 0, n - 1 do
    local j = 6 + i * 3
    redis.call('HSET', KEYS[3], ARGV[j], ARGV[j + 1])
    redis.call('HSET', KEYS[4], ARGV[j], ARGV[j + 2])
  end
  redis.call('HSET', KEYS[6], 'epoch', ARGV[3], 'since', ARGV[4])
end
redis.call('DEL', KEYS[2])
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[after], '*', unpack(ARGV, after + 1))
return {'OK'}
`,
  keys: (k, repo) => [k.lock(repo), k.gone(repo), k.versions(repo), k.checksums(repo), k.frozen(repo), k.meta(repo), k.log(repo)],
  args: (a) => [a.token, a.record ? 'record' : '', a.epoch, a.now, ...(a.record ? triples(a.record.versions, a.record.checksums) : [0]), a.logMax, ...flattenFields(a.log)],
  parse: status({ OK: 'ok', LOCK: 'lock', EXISTS: 'exists' }, 'lock'),
};

export interface TransferArgs {
  token: string;
  versions: ReadonlyMap<string, number>;
  checksums: ReadonlyMap<string, string>;
  epoch: string;
  now: number;
  logMax: number;
  log: Fields;
}

/** A rename's new name takes the old one's versions and checksums, under a new epoch; refused when it has a record, a freeze or a tombstone. */
export const TRANSFER: ScriptDescriptor<[TransferArgs], 'ok' | 'exists' | 'lock'> = {
  name: 'githaTransfer',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then return {'EXISTS'} end
${putTriples(4, 2, 3)}
redis.call('HSET', KEYS[6], 'epoch', ARGV[2], 'since', ARGV[3])
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[after], '*', unpack(ARGV, after + 1))
return {'OK'}
`,
  keys: (k, repo) => [k.lock(repo), k.versions(repo), k.checksums(repo), k.frozen(repo), k.gone(repo), k.meta(repo), k.log(repo)],
  args: (a) => [a.token, a.epoch, a.now, ...triples(a.versions, a.checksums), a.logMax, ...flattenFields(a.log)],
  parse: status({ OK: 'ok', LOCK: 'lock', EXISTS: 'exists' }, 'lock'),
};
