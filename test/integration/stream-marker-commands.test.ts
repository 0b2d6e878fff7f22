/**
 * An SSH (and git://) push records its command list in the write's marker
 * before the pack goes on (docs/redis.md `writing` field `commands`), so an
 * interrupted SSH push can be resolved by adoption like an HTTP one
 * (docs/architecture.md "Verified copies"). The backend's pre-receive hook
 * holds the push (it waits for a file), which keeps the marker in Redis
 * while the test reads it.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

const cluster = useCluster({ backends: 3 });
let githa: GithaProcess;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
  githa = await startGitha(cluster(), { ssh: true, keep: true, config: { verify: { intervalMs: 0 } } });
});

afterAll(async () => {
  await githa?.stop();
  redis?.disconnect();
});

it('an SSH push names its commands in the marker before the backend runs them', async () => {
  const c = cluster();
  const repo = 'marker/ssh-commands';
  await c.createRepository(repo);
  const git = GitClient.forCluster(c, { knownHostsPath: githa.knownHostsPath });
  const work = await git.init();
  const first = await git.commit(work, { 'a.txt': 'first\n' }, 'first');
  await git.push(work, githa.sshUrl(repo), ['main']);
  const second = await git.commit(work, { 'a.txt': 'second\n' }, 'second');

  // Every backend's pre-receive waits for `release`: the push (and its quorum copies) stays in flight.
  const gate = mkdtempSync(join(tmpdir(), 'githa-gate-'));
  const release = join(gate, 'release');
  for (const b of c.backends) {
    const hook = join(b.repoPath(repo), 'hooks', 'pre-receive');
    writeFileSync(hook, `#!/bin/sh\nwhile [ ! -e '${release}' ]; do sleep 0.05; done\n`);
    chmodSync(hook, 0o755);
  }
  const pushing = git.push(work, githa.sshUrl(repo), ['main']);
  const marker = `githa:repo:{${repo}.git}:writing`;
  const commands = await waitFor('the marker of the SSH push', async () => (await redis.hget(marker, 'commands')) ?? undefined, 20_000);
  expect(commands).toBe(`${first} ${second} refs/heads/main`);
  writeFileSync(release, '');
  await pushing;
  expect(await redis.exists(marker)).toBe(0);
});
