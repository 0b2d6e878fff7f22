/**
 * An HTTP read of a repository whose only leader speaks no HTTP while the copies that do are being repaired
 * (docs/architecture.md "A read", src/cluster/read-wait.ts): the read waits for a repaired copy to lead again
 * and is served from it, instead of failing at once "no leader … is reachable (leaders: b3)". Found by the CI
 * chaos run: b3 speaks no HTTP, b1 was re-initialised and b2 drifted, and HTTP reads failed in 16 ms.
 *
 * Deterministic: b1's and b2's copies lose their only branch behind githa's back, a first read finds both
 * drifted, and their repairs (an ordinary push into each, one at a time under the write lock) wait in a
 * pre-receive hook until the test lets them go.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gitDir } from '../support/backend-refs.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { oneVersion, repoKey, waitFor } from '../support/state.js';
import { StopWaiting } from '../support/wait.js';

describe('an HTTP read while the copies that speak HTTP are being repaired', () => {
  const cluster = useCluster({ backends: 3 });

  it('waits for a repaired copy to lead again and is served from it', { timeout: 120_000 }, async () => {
    const c = cluster();
    const options = {
      // b3 has no HTTP endpoint: an HTTP read can only be served by b1 or b2.
      backends: { b3: { http: undefined } },
      config: { replication: { fanOut: false }, catchUp: { readWaitMs: 30_000 }, health: { intervalMs: 60_000 }, verify: { intervalMs: 0 } },
    };
    // Two githas: the first read (through `githa`) finds the drift and starts the repairs; the second read goes through `other`.
    const githa = await startGitha(c, options);
    const other = await startGitha(c, options);
    const git = GitClient.forCluster(c);
    const repo = 'mended/app';
    await c.createRepository(`${repo}.git`);
    const work = await git.init('mended');
    const sha = await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    await oneVersion(c, repo, 3);

    // The repairs of b1 and b2 (a push of the leaders' refs into each) wait in pre-receive until the test lets them go.
    const flag = join(c.dir, 'release-repairs');
    for (const id of ['b1', 'b2']) {
      const hook = join(c.backend(id).repoPath(`${repo}.git`), 'hooks', 'pre-receive');
      await writeFile(hook, `#!/bin/sh\ncat >/dev/null\ntouch '${join(c.dir, `repairing-${id}`)}'\ni=0\nwhile [ ! -e '${flag}' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\nexit 0\n`);
      await chmod(hook, 0o755);
      await gitDir(c.backend(id), `${repo}.git`, ['update-ref', '-d', 'refs/heads/main']);
    }

    // A first read finds both copies empty: both are marked drifted and their repairs start.
    const first = git.lsRemote(githa.url(`${repo}.git`), ['refs/heads/main']);
    // Each repair holds the repository's write lock: one runs (held in its hook), the other waits for it.
    await waitFor('b1 and b2 drifted, a repair in flight', async () => {
      const drift = await c.redis.cli('HKEYS', repoKey(repo, 'drift'));
      return drift.includes('b1') && drift.includes('b2') && (existsSync(join(c.dir, 'repairing-b1')) || existsSync(join(c.dir, 'repairing-b2')));
    }, 30_000, { intervalMs: 20 });

    // A read that starts now (through the other githa) finds no leader that speaks HTTP (b3 only leads): it waits for a repair.
    let secondEnded = false;
    const second = git.lsRemote(other.url(`${repo}.git`), ['refs/heads/main']).finally(() => (secondEnded = true));
    await waitFor('the second read waiting for a repaired copy', () => {
      if (secondEnded) throw new StopWaiting('the second read ended before the repairs were let go');
      return other.logLines().some((l) => l.msg === 'read waits for a repaired copy: no leader speaks its transport');
    }, 30_000, { intervalMs: 20 });
    await writeFile(flag, '');
    expect((await first)['refs/heads/main']).toBe(sha);
    expect((await second)['refs/heads/main']).toBe(sha);
  });
});
