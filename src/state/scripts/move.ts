import { flattenFields, replyOf, type ScriptDescriptor } from '../script.js';

/*
 * The switch of a move (docs/architecture.md "Moves", docs/redis.md
 * `assigned`): B leaves R's assignment and C takes its place in one step,
 * under R's write lock, once C holds exactly what the leaders hold.
 */

export interface SwitchArgs {
  token: string;
  /** B: the backend that gives its copy up. */
  from: string;
  /** C: the backend that takes it (its copy made and recorded already). */
  to: string;
  /**
   * The assignment to write first when none is recorded (every configured
   * backend: what the routing reads an absent assignment as). Written only
   * when the switch succeeds.
   */
  every: readonly string[];
  now: number;
  logMax: number;
  log: Record<string, string | number>;
}

export type SwitchResult =
  | { kind: 'ok'; version: number; materialised: boolean }
  /** The write lock is no longer the caller's. */
  | { kind: 'lock' }
  /** Tombstoned, frozen, or a write marker is there (an interrupted write): nothing may move. */
  | { kind: 'gone' | 'frozen' | 'writing' }
  /** B is not in the assignment, or C is already. */
  | { kind: 'not-assigned' | 'assigned' }
  /** No leader recorded among the assigned backends. */
  | { kind: 'no-record' }
  /** C's recorded version is not the leaders' max (`version`: C's, `max`: the leaders'). */
  | { kind: 'behind'; version: number; max: number }
  /** C's recorded checksum differs from a leader's, or C is drifted. */
  | { kind: 'mismatch' }
  /** B is drifted or suspect: its copy may hold commits no other has, so it is repaired or settled before it goes. */
  | { kind: 'unsettled' };

/**
 * Replaces `from` by `to` in `githa:repo:{R}:assigned` when: the lock token
 * is the caller's; R is not tombstoned, frozen or being written; `from` is
 * assigned and `to` is not; `from` is neither drifted nor suspect (its copy,
 * trashed after, may hold commits no other has: the repair or settling that
 * keeps them runs first); `to`'s recorded version is the max of the
 * assigned backends' and its checksum every leader's (the leaders: assigned
 * backends at that max, drifted ones left out; `to` not drifted). Then
 * `from`'s version, checksum, drift, suspect, suspect-writes and unrecorded
 * entries go (it no longer counts), and a push-log entry `event move`;
 * a `replacing` entry naming `from` (as the replacement or as the lost
 * backend) goes too: the pair it describes is no longer assigned.
 * Every key is R's (one slot: Redis Cluster).
 */
export const SWITCH_ASSIGNMENT: ScriptDescriptor<[SwitchArgs], SwitchResult> = {
  name: 'githaSwitchAssignment',
  durable: true,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'LOCK'} end
if redis.call('EXISTS', KEYS[12]) == 1 then return {'GONE'} end
if redis.call('EXISTS', KEYS[6]) == 1 then return {'FROZEN'} end
if redis.call('EXISTS', KEYS[5]) == 1 then return {'WRITING'} end
local from, to = ARGV[2], ARGV[3]
local assigned = redis.call('HKEYS', KEYS[2])
local materialised = 0
if #assigned == 0 then
  materialised = 1
  local n = tonumber(ARGV[6])
  for i = 1, n do assigned[i] = ARGV[6 + i] end
end
local hasFrom, hasTo = false, false
for _, b in ipairs(assigned) do
  if b == from then hasFrom = true end
  if b == to then hasTo = true end
end
if not hasFrom then return {'NOT_ASSIGNED'} end
if hasTo then return {'ASSIGNED'} end
if redis.call('HEXISTS', KEYS[7], from) == 1 or redis.call('HEXISTS', KEYS[8], from) == 1 then return {'UNSETTLED'} end
local max = 0
for _, b in ipairs(assigned) do
  local v = tonumber(redis.call('HGET', KEYS[3], b) or '0') or 0
  if v > max and redis.call('HEXISTS', KEYS[7], b) == 0 then max = v end
end
if max == 0 then return {'NO_RECORD'} end
local mine = tonumber(redis.call('HGET', KEYS[3], to) or '0') or 0
if mine ~= max then return {'BEHIND', mine, max} end
local sum = redis.call('HGET', KEYS[4], to)
if not sum or redis.call('HEXISTS', KEYS[7], to) == 1 then return {'MISMATCH'} end
for _, b in ipairs(assigned) do
  local v = tonumber(redis.call('HGET', KEYS[3], b) or '0') or 0
  if v == max and redis.call('HEXISTS', KEYS[7], b) == 0 and redis.call('HGET', KEYS[4], b) ~= sum then return {'MISMATCH'} end
end
if materialised == 1 then
  for _, b in ipairs(assigned) do redis.call('HSET', KEYS[2], b, ARGV[4]) end
end
redis.call('HDEL', KEYS[2], from)
redis.call('HSET', KEYS[2], to, ARGV[4])
for i = 3, 4 do redis.call('HDEL', KEYS[i], from) end
for i = 7, 10 do redis.call('HDEL', KEYS[i], from) end
local after = 7 + tonumber(ARGV[6])
redis.call('XADD', KEYS[11], 'MAXLEN', '~', ARGV[5], '*', 'version', max, 'event', 'move', 'from', from, 'to', to, 'materialised', materialised, unpack(ARGV, after))
redis.call('HDEL', KEYS[13], from)
local rep = redis.call('HGETALL', KEYS[13])
for i = 1, #rep, 2 do if rep[i + 1] == from then redis.call('HDEL', KEYS[13], rep[i]) end end
return {'OK', max, materialised}
`,
  keys: (k, repo) => [
    k.lock(repo),
    k.assigned(repo),
    k.versions(repo),
    k.checksums(repo),
    k.writing(repo),
    k.frozen(repo),
    k.drift(repo),
    k.suspect(repo),
    k.suspectWrites(repo),
    k.unrecorded(repo),
    k.log(repo),
    k.gone(repo),
    k.replacing(repo),
  ],
  args: (a) => [a.token, a.from, a.to, a.now, a.logMax, a.every.length, ...a.every, ...flattenFields(a.log)],
  parse: (reply) => {
    const [word, x, y] = replyOf(reply);
    switch (String(word)) {
      case 'OK':
        return { kind: 'ok', version: Number(x), materialised: Number(y) === 1 };
      case 'GONE':
        return { kind: 'gone' };
      case 'FROZEN':
        return { kind: 'frozen' };
      case 'WRITING':
        return { kind: 'writing' };
      case 'NOT_ASSIGNED':
        return { kind: 'not-assigned' };
      case 'ASSIGNED':
        return { kind: 'assigned' };
      case 'NO_RECORD':
        return { kind: 'no-record' };
      case 'BEHIND':
        return { kind: 'behind', version: Number(x), max: Number(y) };
      case 'MISMATCH':
        return { kind: 'mismatch' };
      case 'UNSETTLED':
        return { kind: 'unsettled' };
      default:
        return { kind: 'lock' };
    }
  },
};
