/**
 * A git:// (and so SSH: one code path, src/frontends/stream/verified-read.ts) read of a repository whose only
 * leader takes push after push (docs/architecture.md "Verified copies" 1, "A read"): a listing that shows a
 * push landing but not recorded yet is not served, and the read waits for the push to be recorded however
 * many land one after another, as over HTTP (test/integration/reads-during-pushes.test.ts). Before, a second
 * landing push failed the read "the copy on b1 does not match its record and no other leader can take over
 * this session" (found by the CI chaos run: an SSH ls-remote while pushes landed on b3).
 *
 * Deterministic: githa reaches b1's git daemon through a TCP gate that holds what githa sends (the request
 * line, so git daemon lists the refs only once the test lets it), and each "push" is a write marker plus a
 * held lock in Redis and a ref moved on the backend's disk, recorded by the test.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { startGateRelay } from '../support/gate-relay.js';
import { GitClient } from '../support/git.js';
import { landingPushes } from '../support/landing-push.js';
import { gitRunning } from '../support/git-running.js';
import { startGitha } from '../support/githa.js';
import { waitFor } from '../support/state.js';

const cluster = useCluster({ backends: 1, repositories: ['busy/app'] });
let redis: Redis;

beforeAll(() => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(() => {
  redis?.disconnect();
});

describe('a git:// read while pushes land one after another on the only leader', () => {
  it('waits for each to be recorded and is served the recorded refs, never refused', { timeout: 120_000 }, async () => {
    const c = cluster();
    const repo = 'busy/app';
    const b1 = c.backend('b1');
    const git = GitClient.forCluster(c);
    const daemon = new URL(b1.gitUrl);
    const gate = await startGateRelay(Number(daemon.port));
    const gateUrl = `git://127.0.0.1:${gate.port}${daemon.pathname}`;
    const githa = await startGitha(c, {
      git: true,
      backends: { b1: { git: gateUrl, ssh: undefined } },
      config: { verify: { intervalMs: 0 }, replication: { background: false }, catchUp: { readWaitMs: 30_000 } },
    });
    const work = await git.init('work');
    await git.commit(work, { 'README.md': 'one\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);

    /** Pushes landing on b1 and then recorded, made by hand (test/support/landing-push.ts). */
    const { landing, recorded } = landingPushes(redis, b1, repo);
    const dropped = (): number => githa.logLines().filter((l) => l.msg === 'read moved to another leader: the copy does not match its record').length;

    gate.hold();
    // Protocol v0: git daemon's advertisement is the listing, checked before the client gets a byte of it.
    const read = gitRunning(git, ['-c', 'protocol.version=0', 'ls-remote', githa.gitUrl(repo), 'refs/heads/main'], work);
    await waitFor('the first listing request to reach the gate', () => gate.held > 0);
    // Push 1 lands before git daemon lists the refs: the listing shows it, the record does not.
    await landing();
    gate.pass();
    await waitFor('githa to drop the listing that shows push 1', () => dropped() === 1, 10_000);
    gate.hold();
    await recorded();
    await waitFor('the second listing request to reach the gate', () => gate.held > 0);
    // Push 2 lands before that listing: again not served, and again waited for.
    const last = await landing();
    gate.pass();
    await waitFor('githa to drop the listing that shows push 2', () => dropped() === 2, 10_000);
    await recorded();
    expect(await read.exit, read.text()).toBe(0);
    const out = (await git.run(['ls-remote', githa.gitUrl(repo), 'refs/heads/main'])).stdout;
    expect(out.split(/\s/)[0]).toBe(last);
    await gate.close();
  });
});
