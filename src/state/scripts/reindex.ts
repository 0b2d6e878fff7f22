import type { ScriptDescriptor } from '../script.js';

/**
 * Judges one repository again for the work index (src/state/scripts/work.ts) and nothing else (its body is empty): the replicator after a visit that found
 * nothing to copy, and the full sweep (src/cluster/work-sweep.ts). Answers 1 when it needs work.
 */
export const REINDEX: ScriptDescriptor<[], number> = {
  name: 'githaReindex',
  lua: "return 'githa-reindex'",
  keys: () => [],
  args: () => [],
  parse: (reply) => Number(reply),
};
