import { replyOf, type ScriptDescriptor } from '../script.js';

/**
 * A move that did not switch (docs/architecture.md "Moves"): its target C,
 * outside R's recorded assignment, keeps no record of the copy it was given
 * (version, checksum, unrecorded and drift entries), so no backend holds a
 * version that counts nowhere. 'assigned': C is in the assignment (or none is
 * recorded), nothing changed. All keys are R's: one slot.
 */
export const FORGET_MOVE_TARGET: ScriptDescriptor<[{ to: string }], 'ok' | 'assigned'> = {
  name: 'githaForgetMoveTarget',
  durable: true,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {'ASSIGNED'} end
for i = 2, 5 do redis.call('HDEL', KEYS[i], ARGV[1]) end
return {'OK'}
`,
  keys: (k, repo) => [k.assigned(repo), k.versions(repo), k.checksums(repo), k.unrecorded(repo), k.drift(repo)],
  args: (a) => [a.to],
  parse: (reply) => (replyOf(reply)[0] === 'OK' ? 'ok' : 'assigned'),
};
