import type { Keys } from '../keys.js';
import type { MarkerFields } from '../repo-state.js';
import { compactNewLog, flattenFields, nextVersion, replyOf, type ScriptDescriptor } from '../script.js';

/*
 * The scripts of one push (docs/architecture.md "A push"). Each is guarded by
 * the caller's write-lock token and write id, so a githa that lost its lock
 * (paused past its lease) can neither start nor commit a write.
 */

export type Guarded = 'ok' | 'lock' | 'marker';

function guardedStatus(reply: unknown): Guarded {
  const s = replyOf(reply)[0];
  return s === 'OK' ? 'ok' : s === 'LOCK' ? 'lock' : 'marker';
}

export type { MarkerFields } from '../repo-state.js';

/** Writes the `writing` marker. */
export const BEGIN_WRITE: ScriptDescriptor<[token: string, marker: MarkerFields], 'ok' | 'lock' | 'frozen' | 'writing'> = {
  name: 'githaBeginWrite',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'FROZEN'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'WRITING'} end
local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))
redis.call('HSET', KEYS[3], 'heartbeat', now, unpack(ARGV, 2))
return {'OK'}
`,
  keys: (k: Keys, repo: string) => [k.lock(repo), k.frozen(repo), k.writing(repo)],
  args: (token, marker) => [token, ...flattenFields({ ...marker })],
  parse: (reply) => {
    const s = replyOf(reply)[0];
    return s === 'OK' ? 'ok' : s === 'FROZEN' ? 'frozen' : s === 'WRITING' ? 'writing' : 'lock';
  },
};

/** Keeps the marker alive (its heartbeat is Redis's clock). */
export const HEARTBEAT: ScriptDescriptor<[token: string, writeId: string], Guarded> = {
  name: 'githaHeartbeat',
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('HGET', KEYS[2], 'id') ~= ARGV[2] then return {'MARKER'} end
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], 'heartbeat', tostring(t[1] * 1000 + math.floor(t[2] / 1000)))
return {'OK'}
`,
  keys: (k, repo) => [k.lock(repo), k.writing(repo)],
  args: (token, writeId) => [token, writeId],
  parse: guardedStatus,
};

/**
 * Names the backends a write's quorum copies go to, before any copy starts
 * (the marker's `copies` field): reads avoid every backend a marker names, so
 * no reader sees a push before it is acknowledged (docs/architecture.md).
 */
export const MARK_COPIES: ScriptDescriptor<[token: string, writeId: string, copies: readonly string[]], Guarded> = {
  name: 'githaMarkCopies',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('HGET', KEYS[2], 'id') ~= ARGV[2] then return {'MARKER'} end
redis.call('HSET', KEYS[2], 'copies', ARGV[3])
return {'OK'}
`,
  keys: (k, repo) => [k.lock(repo), k.writing(repo)],
  args: (token, writeId, copies) => [token, writeId, copies.join(' ')],
  parse: guardedStatus,
};

/**
 * Records the push's command list in its marker (field `commands`), for a
 * transport that learns it while forwarding (SSH, git://): an interrupted
 * write is adopted only when its commands are known (docs/redis.md).
 */
export const MARK_COMMANDS: ScriptDescriptor<[token: string, writeId: string, commands: string], Guarded> = {
  name: 'githaMarkCommands',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('HGET', KEYS[2], 'id') ~= ARGV[2] then return {'MARKER'} end
redis.call('HSET', KEYS[2], 'commands', ARGV[3])
return {'OK'}
`,
  keys: (k, repo) => [k.lock(repo), k.writing(repo)],
  args: (token, writeId, commands) => [token, writeId, commands],
  parse: guardedStatus,
};

/** Removes the marker of a write that changed no ref. */
export const ABORT_WRITE: ScriptDescriptor<[token: string, writeId: string], Guarded> = {
  name: 'githaAbortWrite',
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('HGET', KEYS[2], 'id') ~= ARGV[2] then return {'MARKER'} end
redis.call('DEL', KEYS[2])
return {'OK'}
`,
  keys: (k, repo) => [k.lock(repo), k.writing(repo)],
  args: (token, writeId) => [token, writeId],
  parse: guardedStatus,
};

export interface CommitWriteArgs {
  token: string;
  writeId: string;
  backend: string;
  checksum: string;
  /** The backends the write-quorum copies reached. */
  copies: readonly string[];
  logMax: number;
  log: Record<string, string | number>;
}

export type CommitWriteResult = { kind: 'ok'; version: number } | { kind: 'lock' } | { kind: 'marker' };

/**
 * The written backend and the quorum copies become max + 1 together, with
 * the push-log entry, and the marker goes (docs/architecture.md "A push" 4).
 */
export const COMMIT_WRITE: ScriptDescriptor<[CommitWriteArgs], CommitWriteResult> = {
  name: 'githaCommitWrite',
  durable: true,
  lua: `
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
${compactNewLog('KEYS[5]')}
redis.call('DEL', KEYS[2])
return {'OK', version}
`,
  keys: (k, repo) => [k.lock(repo), k.writing(repo), k.versions(repo), k.checksums(repo), k.log(repo)],
  args: (a) => [a.token, a.writeId, a.backend, a.checksum, a.logMax, a.copies.length, ...a.copies, ...flattenFields(a.log)],
  parse: (reply) => {
    const [s, v] = replyOf(reply);
    if (s === 'OK') return { kind: 'ok', version: Number(v) };
    return s === 'LOCK' ? { kind: 'lock' } : { kind: 'marker' };
  },
};
