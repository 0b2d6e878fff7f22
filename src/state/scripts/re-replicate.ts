import type { Keys } from '../keys.js';
import { flattenFields, replyOf, type ScriptDescriptor } from '../script.js';

/*
 * The two steps of a re-replication (docs/architecture.md "Re-replication"):
 * a replacement joins the assignment of a repository that a lost backend
 * holds, then, once it caught up to the leaders, the lost backend leaves it.
 * Between the two the repository has one copy more assigned than its factor,
 * never one fewer. Each step writes its push-log entry (`event re-replicate`)
 * in the same turn. Every key is one of R's (`{R}`): one slot.
 *
 * Neither runs while a write may be in flight: each is refused ('busy')
 * while R's write lock is held or a write marker (`writing`) is there, and
 * the re-replication loop tries again on a later tick. A push chooses its
 * fan-out copies and counts its write quorum from the assignment it read
 * under the lock; dropping a backend under it could leave an acknowledged
 * push on fewer assigned copies than its quorum, and a marker naming the
 * dropped backend could never be resolved. The script is one atomic step,
 * so "no lock key" stands for holding the lock for that step (a push that
 * takes the lock after it reads the new assignment).
 */

/** Refused while R's write lock is held (KEYS[l]) or a write marker is there (KEYS[w]). */
const idle = (l: number, w: number): string =>
  `if redis.call('EXISTS', KEYS[${l}]) == 1 or redis.call('EXISTS', KEYS[${w}]) == 1 then return {'BUSY'} end`;

type Fields = Record<string, string | number>;

export interface AddReplacementArgs {
  /** The assignment the choice was made on (sorted): a move or another re-replication since then refuses it. */
  expected: readonly string[];
  lost: string;
  target: string;
  now: number;
  logMax: number;
  log: Fields;
}

/**
 * `target` joins R's assignment, recorded in `replacing` as the replacement
 * of `lost`. A version the target kept from an earlier assignment is
 * forgotten: it is stale (no version) until a catch-up records it, so it
 * neither leads nor serves before then. Refused when R is gone ('gone'),
 * its assignment is not `expected` ('changed'), or a write may be in flight
 * ('busy').
 */
export const ADD_REPLACEMENT: ScriptDescriptor<[AddReplacementArgs], 'ok' | 'changed' | 'gone' | 'busy'> = {
  name: 'githaAddReplacement',
  durable: true,
  lua: `
if redis.call('EXISTS', KEYS[3]) == 1 then return {'GONE'} end
${idle(7, 8)}
local cur = redis.call('HKEYS', KEYS[1])
table.sort(cur)
if table.concat(cur, ' ') ~= ARGV[5] then return {'CHANGED'} end
if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 or redis.call('HEXISTS', KEYS[1], ARGV[4]) == 1 then return {'CHANGED'} end
redis.call('HSET', KEYS[1], ARGV[4], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[4], ARGV[3])
redis.call('HDEL', KEYS[5], ARGV[4])
redis.call('HDEL', KEYS[6], ARGV[4])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 6))
return {'OK'}
`,
  keys: (k: Keys, repo: string) => [
    k.assigned(repo),
    k.replacing(repo),
    k.gone(repo),
    k.log(repo),
    k.versions(repo),
    k.checksums(repo),
    k.lock(repo),
    k.writing(repo),
  ],
  args: (a) => [a.logMax, a.now, a.lost, a.target, [...a.expected].sort().join(' '), ...flattenFields(a.log)],
  parse: (reply) => ({ OK: 'ok', GONE: 'gone', BUSY: 'busy' })[String(replyOf(reply)[0])] as 'ok' | 'gone' | 'busy' | undefined ?? 'changed',
};

export interface DropLostArgs {
  lost: string;
  replacement: string;
  logMax: number;
  log: Fields;
}

/**
 * `lost` leaves R's assignment, and its record (version, checksum, drift,
 * suspect entries) goes with it, once `replacement` (recorded as its
 * replacement) is at the highest version of any assigned backend and not
 * drifted. Its copy on disk is not touched: a backend that comes back holds
 * a repository githa no longer routes to. 'behind': not caught up yet;
 * 'changed': the replacement or the lost backend left the assignment;
 * 'busy': a write may be in flight (the write lock is held or a marker is
 * there, which may name the lost backend as its backend or a quorum copy).
 * 'unsettled': the lost backend is drifted or suspect, so its copy may hold
 * commits no other has: it stays until repaired or settled (the loop tries
 * again on a later tick).
 */
export const DROP_LOST: ScriptDescriptor<[DropLostArgs], 'ok' | 'behind' | 'changed' | 'busy' | 'unsettled'> = {
  name: 'githaDropLost',
  durable: true,
  lua: `
if redis.call('HGET', KEYS[2], ARGV[3]) ~= ARGV[2] then return {'CHANGED'} end
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 or redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 then return {'CHANGED'} end
${idle(10, 11)}
if redis.call('HEXISTS', KEYS[5], ARGV[2]) == 1 or redis.call('HEXISTS', KEYS[7], ARGV[2]) == 1 then return {'UNSETTLED'} end
local max = 0
for _, b in ipairs(redis.call('HKEYS', KEYS[1])) do
  local v = tonumber(redis.call('HGET', KEYS[3], b))
  if v and v > max then max = v end
end
local mine = tonumber(redis.call('HGET', KEYS[3], ARGV[3]))
if not mine or mine < max or redis.call('HEXISTS', KEYS[5], ARGV[3]) == 1 then return {'BEHIND'} end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[3])
for i = 3, 9 do if i ~= 6 then redis.call('HDEL', KEYS[i], ARGV[2]) end end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[1], '*', 'version', mine, unpack(ARGV, 4))
return {'OK'}
`,
  keys: (k: Keys, repo: string) => [
    k.assigned(repo),
    k.replacing(repo),
    k.versions(repo),
    k.checksums(repo),
    k.drift(repo),
    k.log(repo),
    k.suspect(repo),
    k.suspectWrites(repo),
    k.unrecorded(repo),
    k.lock(repo),
    k.writing(repo),
  ],
  args: (a) => [a.logMax, a.lost, a.replacement, ...flattenFields(a.log)],
  parse: (reply) => ({ OK: 'ok', BEHIND: 'behind', BUSY: 'busy', UNSETTLED: 'unsettled' })[String(replyOf(reply)[0])] as 'ok' | 'behind' | 'busy' | 'unsettled' | undefined ?? 'changed',
};
