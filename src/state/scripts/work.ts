import type { Keys } from '../keys.js';

/**
 * The index of work (docs/redis.md `work`; docs/architecture.md "Background
 * replication"): the repositories with something for the replicator to do — a
 * stale or missing (repository, backend) pair, a write marker (in flight or
 * interrupted), a suspect or drifted copy, a freeze. Every script that changes
 * a repository's record is wrapped (ScriptRunner) so that, after its own body,
 * it judges the repository once more and enters it in the index (`ZADD NX`,
 * scored by when it first needed work) or takes it out (`ZREM`). The index so
 * grows with changes, and the periodic scan reads only it.
 */

/** Scripts that never change whether a repository needs work (the lease scripts, the marker's own fields): not wrapped. */
const UNWRAPPED = new Set(['githaHeartbeat', 'githaMarkCopies', 'githaMarkCommands', 'githaAcquirePair', 'githaFencePair', 'githaExtendPair', 'githaReleasePair']);

/** The keys the judgement reads, appended after the script's own keys (and popped off KEYS before its body runs). */
export function workKeys(k: Keys, repo: string): string[] {
  return [k.versions(repo), k.writing(repo), k.frozen(repo), k.suspect(repo), k.drift(repo), k.assigned(repo), k.work(repo)];
}

const WORK_KEY_COUNT = 7;

/**
 * Lua: `githa_needs_work(wk, backends)`: whether the repository whose keys are `wk` (workKeys' order) needs work.
 * `backends`: the configured backend ids, space-separated; the repository's `assigned` hash replaces them when
 * present (and then the max is taken over the assigned backends only: a higher version recorded outside the
 * assignment is nothing the replicator copies); with neither (a tool without the config), the recorded backends. No versions recorded (not yet known,
 * or retired): nothing to do.
 */
export const NEEDS_WORK_LUA = `local function githa_needs_work(wk, backends)
  if redis.call('EXISTS', wk[2]) == 1 or redis.call('EXISTS', wk[3]) == 1 then return true end
  if redis.call('HLEN', wk[4]) > 0 or redis.call('HLEN', wk[5]) > 0 then return true end
  local flat = redis.call('HGETALL', wk[1])
  if #flat == 0 then return false end
  local v, max = {}, 0
  for i = 1, #flat, 2 do
    local n = tonumber(flat[i + 1]) or 0
    v[flat[i]] = n
    if n > max then max = n end
  end
  local targets = redis.call('HKEYS', wk[6])
  if #targets > 0 then
    -- With an assignment, only the assigned backends count, for the max too: the replicator copies among them only.
    max = 0
    for _, b in ipairs(targets) do
      if (v[b] or 0) > max then max = v[b] or 0 end
    end
  end
  if #targets == 0 then
    for id in string.gmatch(backends, '%S+') do targets[#targets + 1] = id end
  end
  if #targets == 0 then
    for b in pairs(v) do targets[#targets + 1] = b end
  end
  for _, b in ipairs(targets) do
    if (v[b] or 0) < max then return true end
  end
  return false
end`;

/** Lua: enters or removes the repository (named by the `versions` key's tag) in the work index `wk[7]`. */
export const REINDEX_LUA = `local function githa_reindex(wk, backends, now)
  local repo = string.match(wk[1], '{(.*)}')
  if githa_needs_work(wk, backends) then
    redis.call('ZADD', wk[7], 'NX', now, repo)
    return 1
  end
  redis.call('ZREM', wk[7], repo)
  return 0
end`;

/**
 * The script with the index kept after its body: ARGV gets `now` and the backend list appended, KEYS the work keys;
 * both are popped before the body runs, so the body sees exactly its own KEYS and ARGV (`#ARGV`, `unpack(ARGV, n)`
 * unchanged). Every return path of the body is followed by the judgement, a refused change included (idempotent).
 */
export function wrapLua(lua: string): string {
  return `${NEEDS_WORK_LUA}
${REINDEX_LUA}
local githa_backends = table.remove(ARGV)
local githa_now = tonumber(table.remove(ARGV))
local githa_wk = {}
for i = ${WORK_KEY_COUNT}, 1, -1 do githa_wk[i] = table.remove(KEYS) end
local function githa_body()
${lua}
end
local githa_reply = githa_body()
local githa_needs = githa_reindex(githa_wk, githa_backends, githa_now)
if githa_reply == 'githa-reindex' then return githa_needs end
return githa_reply`;
}

export function wrapsWork(name: string): boolean {
  return !UNWRAPPED.has(name);
}
