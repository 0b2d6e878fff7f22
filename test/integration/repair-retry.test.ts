/**
 * A repair that fails is tried again by the repairer itself (docs/architecture.md "Repair without loss"),
 * with nothing else asking: a drifted copy is read by no one and copied to by no one, and the verifier's sweep
 * is hourly. Found as a CI failure of test/integration/sentinel.test.ts: after a Redis failover, copies made
 * drifted had their repairs fail while Redis was unreachable, and every later push to that repository missed
 * its write quorum.
 *
 * Deterministic: b3's copy loses its branch behind githa's back, one read finds it drifted, and its repair
 * (an ordinary push into b3) is refused once by a pre-receive hook. No read, push or sweep follows.
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

describe('a repair that fails', () => {
  const cluster = useCluster({ backends: 3 });

  it('is tried again by the repairer itself, and the copy leads again', { timeout: 120_000 }, async () => {
    const c = cluster();
    // No verifier; background replication copies into no drifted copy: nothing but the repairer could ask for the repair again.
    const githa = await startGitha(c, { config: { replication: { fanOut: false }, verify: { intervalMs: 0 } } });
    const git = GitClient.forCluster(c);
    const repo = 'retry/app';
    await c.createRepository(`${repo}.git`);
    const work = await git.init('retry');
    const sha = await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    await oneVersion(c, repo, 3);

    // b3 refuses the first push it is sent (the repair's refill), then takes pushes again.
    const refused = join(c.dir, 'refused-once');
    const hook = join(c.backend('b3').repoPath(`${repo}.git`), 'hooks', 'pre-receive');
    await writeFile(hook, `#!/bin/sh\ncat >/dev/null\nif [ ! -e '${refused}' ]; then touch '${refused}'; echo 'refused once' >&2; exit 1; fi\nexit 0\n`);
    await chmod(hook, 0o755);
    await gitDir(c.backend('b3'), `${repo}.git`, ['update-ref', '-d', 'refs/heads/main']);

    // Reads until one lands on b3 and finds it off its record (a read is served by any leader).
    await waitFor('b3 drifted', async () => {
      await git.lsRemote(githa.url(`${repo}.git`), ['refs/heads/main']);
      return (await c.redis.cli('HKEYS', repoKey(repo, 'drift'))).includes('b3');
    }, 30_000);
    await waitFor('the first repair refused by b3', () => existsSync(refused) && githa.logLines().some((l) => l.msg === 'copy repair failed; the copy leads no more and is tried again later'), 30_000);

    // Nothing more is asked of githa: the repairer's own retry refills b3 and clears its drift.
    await waitFor('b3 repaired by the retry', async () => !(await c.redis.cli('HKEYS', repoKey(repo, 'drift'))).includes('b3'), 60_000);
    expect(githa.logLines().some((l) => l.msg === 'copy repaired: refilled from a leader' && l.backend === 'b3')).toBe(true);
    const refs = await gitDir(c.backend('b3'), `${repo}.git`, ['rev-parse', 'refs/heads/main']);
    expect(refs.trim()).toBe(sha);
  });
});
