/**
 * `githa create` with a factor while a backend is down (docs/architecture.md
 * "Placement"): the CLI starts from the health the serving githas share in
 * Redis (src/cli/commands/context.ts), so placement gives the down backend
 * no copy (and no assignment left for the fill): every repository is created
 * on, and assigned to, the backends that are up.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { startGitha } from '../support/githa.js';
import { waitFor } from '../support/wait.js';
import { githaCli } from './run.js';
import { FAST_HEALTH } from './setup.js';

const cluster = useCluster({ backends: 3 });

describe('githa create while a backend is down', () => {
  it('places no copy on the backend the shared health says is down', async () => {
    const c = cluster();
    const g = await startGitha(c, { admin: true, config: { health: FAST_HEALTH, replication: { factor: 2 } } });
    await c.backend('b1').stop('SIGKILL');
    await waitFor('b1 shared as down', async () => ((await c.redis.cli('HGET', 'githa:backend:b1', 'health')).trim() === 'down' ? true : undefined), 5_000);
    // Top-level names: a nested one has its parents looked up on every backend first, which marks b1 down in this process.
    for (const r of ['down-one', 'down-two', 'down-three']) {
      const out = await githaCli(g.configPath, ['create', r, '--json']);
      expect(out.code, out.stderr).toBe(0);
      const res = JSON.parse(out.stdout) as { backends: string[]; pending: string[] };
      expect({ backends: [...res.backends].sort(), pending: res.pending }).toEqual({ backends: ['b2', 'b3'], pending: [] });
      // Assigned too (a backend chosen but not reached would stay assigned, its copy left to the fill).
      const assigned = (await c.redis.cli('HKEYS', `githa:repo:{${r}.git}:assigned`)).split('\n').map((x) => x.trim()).filter(Boolean).sort();
      expect(assigned).toEqual(['b2', 'b3']);
    }
  });
});
