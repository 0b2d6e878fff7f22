/**
 * An HTTP read whose only other HTTP leader dies while the remaining one takes
 * a push (docs/architecture.md "A read"): the read waits for the push to be
 * recorded and is served from its target, instead of failing "no leader is
 * reachable" after the dead one refused it. Found by the 10-minute chaos run
 * (seed 2021): b3 speaks no HTTP, b1 was killed, b2 took a push. The push is
 * held deterministically by a pre-receive hook that waits for a file.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { oneVersion, repoKey, waitFor } from '../support/state.js';

describe('an HTTP read while its leaders are down or taking a push', () => {
  const cluster = useCluster({ backends: 3 });

  it('waits for the push on the leader that can serve it when the other HTTP leader refuses the connection', { timeout: 120_000 }, async () => {
    const c = cluster();
    const githa = await startGitha(c, {
      // b3 has no HTTP endpoint (its reads are SSH and git:// only); b1 takes no writes, so the push goes to b2.
      backends: { b1: { writable: false }, b3: { http: undefined } },
      config: { replication: { writeQuorum: 2, fanOut: false }, catchUp: { readWaitMs: 20_000 }, health: { intervalMs: 60_000 } },
    });
    const git = GitClient.forCluster(c);
    const repo = 'held/app';
    await c.createRepository(`${repo}.git`);
    const work = await git.init('held');
    await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    await oneVersion(c, repo, 3);

    // b2's receive-pack waits in its pre-receive hook until the test lets it go.
    const flag = join(c.dir, 'release-push');
    const hook = join(c.backend('b2').repoPath(`${repo}.git`), 'hooks', 'pre-receive');
    await writeFile(hook, `#!/bin/sh\ncat >/dev/null\ni=0\nwhile [ ! -e '${flag}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\nexit 0\n`);
    await chmod(hook, 0o755);
    const sha = await git.commit(work, { 'a.txt': 'two\n' }, 'two');
    const pushing = git.push(work, githa.url(`${repo}.git`), ['main']);
    await waitFor('the push in flight (its marker)', async () => (await c.redis.cli('HGET', repoKey(repo, 'writing'), 'backend')) === 'b2', 30_000, { intervalMs: 10 });

    await c.backend('b1').stop('SIGKILL');
    const reading = git.lsRemote(githa.url(`${repo}.git`), ['refs/heads/main']);
    await waitFor('the read refused by b1', () => githa.logLines().some((l) => l.msg === 'read attempt failed; trying the next leader' && l.backend === 'b1'), 30_000, { intervalMs: 10 });
    await writeFile(flag, '');
    await pushing;
    expect((await reading)['refs/heads/main']).toBe(sha);
  });
});
