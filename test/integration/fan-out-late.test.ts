/**
 * A fan-out copy whose answer never came whole (docs/architecture.md "Write
 * quorum", "Fan-out writes"): it took the whole pack, so its receive-pack may
 * still change its refs after githa stopped waiting for it
 * (replication.fanOutStallMs) and listed it. A listing made then is no proof
 * that it stays unchanged: when the outcome keeps nothing (the target
 * refused), a copy that later lands the push must not be left a leader holding
 * it with nothing in Redis saying so (no marker, not suspect, not drifted).
 * The copy is held after the pack by a pre-receive hook that waits for a file.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { refOnDisk } from '../support/backend-refs.js';
import { cliVersions, repoKey, waitFor } from '../support/state.js';

describe('a fan-out copy that answers after githa listed it', () => {
  const cluster = useCluster({ backends: 3 });

  /** githa fanning out (b1 the target: b2 and b3 take no writes), and `repo` with one commit pushed through it. */
  async function seeded(repo: string, transport: 'http' | 'ssh') {
    const githa = await startGitha(cluster(), {
      ssh: true,
      backends: { b2: { writable: false }, b3: { writable: false } },
      config: { replication: { writeQuorum: 2, background: false, fanOut: true, fanOutStallMs: 500 } },
    });
    const git = GitClient.forCluster(cluster(), { knownHostsPath: githa.knownHostsPath });
    const url = (): string => (transport === 'http' ? githa.url(`${repo}.git`) : githa.sshUrl(repo));
    await cluster().createRepository(`${repo}.git`);
    const work = await git.init(repo);
    await git.commit(work, { 'README.md': `${repo}\n` }, 'first');
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    return { githa, git, url, work };
  }

  for (const transport of ['http', 'ssh'] as const) {
    it(`${transport}: the target refuses, a copy holding the whole pack lands it late: it is never left a leader holding it unrecorded`, { timeout: 180_000 }, async () => {
      const repo = `fan-late-${transport}`;
      const { git, url, work } = await seeded(repo, transport);
      const first = await refOnDisk(cluster().backend('b1'), `${repo}.git`, 'refs/heads/main');

      const dir = (id: string): string => cluster().backend(id).repoPath(`${repo}.git`);
      // The target refuses the push.
      await writeFile(join(dir('b1'), 'hooks', 'pre-receive'), `#!/bin/sh\ncat >/dev/null\necho 'refused by the target' >&2\nexit 1\n`);
      await chmod(join(dir('b1'), 'hooks', 'pre-receive'), 0o755);
      // Each possible copy takes the whole pack, then waits (its receive-pack has not updated a ref yet) until released, then accepts.
      for (const id of ['b2', 'b3']) {
        const hook = join(dir(id), 'hooks', 'pre-receive');
        await writeFile(hook, `#!/bin/sh\ncat >/dev/null\ntouch '${join(dir(id), 'hook-started')}'\nwhile [ ! -e '${join(dir(id), 'hook-release')}' ]; do sleep 0.05; done\nexit 0\n`);
        await chmod(hook, 0o755);
      }

      const sha = await git.commit(work, { 'late.txt': 'late\n' }, 'landed late on a copy');
      const r = await git.push(work, url(), ['main'], [], { allowFailure: true });
      expect(r.code).not.toBe(0);
      const copy = ['b2', 'b3'].find((id) => existsSync(join(dir(id), 'hook-started')));
      expect(copy).toBeDefined();
      // The push is over for the client; now the copy's receive-pack goes on and lands it.
      for (const id of ['b2', 'b3']) await writeFile(join(dir(id), 'hook-release'), '');
      await waitFor('the copy to land the push late', async () => (await refOnDisk(cluster().backend(copy!), `${repo}.git`, 'refs/heads/main')) === sha, 60_000);
      expect(await refOnDisk(cluster().backend('b1'), `${repo}.git`, 'refs/heads/main')).toBe(first);

      // Something in Redis must keep reads and writes from trusting it as a leader of the recorded refs.
      const redis = cluster().redis;
      const recorded = {
        marker: await redis.cli('EXISTS', repoKey(repo, 'writing')),
        suspect: await redis.cli('HEXISTS', repoKey(repo, 'suspect'), copy!),
        drift: await redis.cli('HEXISTS', repoKey(repo, 'drift'), copy!),
      };
      expect(recorded).not.toEqual({ marker: '0', suspect: '0', drift: '0' });
    });
    it(`${transport}: a copy that answers its head and then hangs after the pack does not hold the acknowledgement past fanOutStallMs`, { timeout: 180_000 }, async () => {
      const repo = `fan-hangs-${transport}`;
      const { git, url, work } = await seeded(repo, transport);
      const dir = (id: string): string => cluster().backend(id).repoPath(`${repo}.git`);
      // Each possible copy hangs in its first pre-receive (after the whole pack, its HTTP head long sent) until released
      // (or a minute passes, so a githa that waits on it ends the test); later pushes (the relay) pass.
      for (const id of ['b2', 'b3']) {
        const hook = join(dir(id), 'hooks', 'pre-receive');
        const started = join(dir(id), 'hook-started');
        const release = join(dir(id), 'hook-release');
        await writeFile(hook, `#!/bin/sh\ncat >/dev/null\n[ -e '${started}' ] && exit 0\ntouch '${started}'\ni=0\nwhile [ ! -e '${release}' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\nexit 0\n`);
        await chmod(hook, 0o755);
      }
      const sha = await git.commit(work, { 'hang.txt': 'hang\n' }, 'a copy hangs');
      const t0 = Date.now();
      await git.push(work, url(), ['main']);
      const took = Date.now() - t0;
      const copy = ['b2', 'b3'].find((id) => existsSync(join(dir(id), 'hook-started')));
      expect(copy).toBeDefined();
      // Acknowledged while the copy still hangs (its hook waits up to a minute): far below that, not held by the copy.
      expect(took).toBeLessThan(20_000);
      for (const id of ['b2', 'b3']) await writeFile(join(dir(id), 'hook-release'), '');
      expect(await refOnDisk(cluster().backend('b1'), `${repo}.git`, 'refs/heads/main')).toBe(sha);
      const v = await cliVersions(cluster(), repo);
      expect(Object.values(v).filter((n) => n === v.b1).length).toBeGreaterThanOrEqual(2);
    });
  }
});
