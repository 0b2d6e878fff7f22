import type { Keys } from '../keys.js';
import { flattenFields, replyOf, type ScriptDescriptor } from '../script.js';

export interface ReassignArgs {
  token: string;
  now: number;
  factor: number;
  /** Backends the repository is assigned to from now. */
  add: readonly string[];
  /** Backends it is no longer assigned to: their records of the copy go too. */
  remove: readonly string[];
  logMax: number;
  log: Record<string, string | number>;
}

/**
 * `githa repo factor` (docs/architecture.md "Replication factor"): under the
 * write lock `token`, the assignment gains `add` and loses `remove`, `meta`
 * takes the new factor, and each removed backend's version, checksum, drift,
 * suspect and unrecorded entries go (its copy is trashed after), so a backend
 * assigned again later starts as a missing copy to fill; a `replacing`
 * entry naming a removed backend (as the replacement or as the lost one)
 * goes as well, so a pair that is no longer assigned is not counted as one
 * copy. An added backend
 * outside a recorded assignment loses those entries too: a record it kept
 * from before (a catch-up recorded after a move switched it out) describes a
 * copy that was trashed, and must not make it a leader. Refused ('lock') when
 * the lock is not the caller's; refused ('unsettled') when a removed backend
 * is drifted or suspect: its copy may hold commits no other has, and the
 * repair or settling that keeps them runs first (docs/architecture.md
 * "Replication factor"). All keys carry `{R}`: one slot.
 */
export const REASSIGN: ScriptDescriptor<[ReassignArgs], 'ok' | 'lock' | 'unsettled'> = {
  name: 'githaReassign',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
local na = tonumber(ARGV[4])
local nr = tonumber(ARGV[5 + na])
for i = 1, nr do
  local b = ARGV[5 + na + i]
  if redis.call('HEXISTS', KEYS[6], b) == 1 or redis.call('HEXISTS', KEYS[7], b) == 1 then return {'UNSETTLED', b} end
end
local recorded = redis.call('EXISTS', KEYS[2]) == 1
for i = 1, na do
  local b = ARGV[4 + i]
  if recorded and redis.call('HEXISTS', KEYS[2], b) == 0 then
    for k = 4, 8 do redis.call('HDEL', KEYS[k], b) end
  end
  redis.call('HSET', KEYS[2], b, ARGV[2])
end
for i = 1, nr do
  local b = ARGV[5 + na + i]
  redis.call('HDEL', KEYS[2], b)
  for k = 4, 8 do redis.call('HDEL', KEYS[k], b) end
end
redis.call('HSET', KEYS[3], 'factor', ARGV[3])
local after = 6 + na + nr
redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[after], '*', unpack(ARGV, after + 1))
for i = 1, nr do
  local b = ARGV[5 + na + i]
  redis.call('HDEL', KEYS[10], b)
  local rep = redis.call('HGETALL', KEYS[10])
  for j = 1, #rep, 2 do if rep[j + 1] == b then redis.call('HDEL', KEYS[10], rep[j]) end end
end
return {'OK'}
`,
  keys: (k: Keys, repo: string) => [
    k.lock(repo),
    k.assigned(repo),
    k.meta(repo),
    k.versions(repo),
    k.checksums(repo),
    k.drift(repo),
    k.suspect(repo),
    k.unrecorded(repo),
    k.log(repo),
    k.replacing(repo),
  ],
  args: (a) => [a.token, a.now, a.factor, a.add.length, ...a.add, a.remove.length, ...a.remove, a.logMax, ...flattenFields(a.log)],
  parse: (reply) => ({ OK: 'ok', UNSETTLED: 'unsettled' })[String(replyOf(reply)[0])] as 'ok' | 'unsettled' | undefined ?? 'lock',
};
