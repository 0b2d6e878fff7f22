import { workReason } from '../../src/state/needs-work.js';
import type { MemoryStore } from './memory-store.js';

/**
 * The work index of a MemoryStore as the scripts keep it on Redis (src/state/scripts/work.ts): every repository
 * whose judgement says it needs work, judged from its state now (so it cannot drift from the store's records).
 */
export async function memoryWorkIndex(store: MemoryStore, backends: readonly string[] = []): Promise<string[]> {
  const names = [...store.repos.keys()];
  const states = await Promise.all(names.map((n) => store.read(n)));
  return names.filter((_, i) => workReason(states[i]!, backends) !== 'none');
}
