/**
 * "Ack after commit" (docs/architecture.md, "A push", step 4) holds for a
 * deployed githa whatever its environment: the chaos self-test's broken write
 * path is a hook only tools/chaos/githa-ack-before-commit.ts passes to
 * startGitha, and GITHA_TEST_ACK_BEFORE_COMMIT=1 (the environment switch it
 * replaced) does nothing to `githa serve`. The backend's replies reach githa
 * through a relay that holds each one 1.5 s, so a githa that answered the
 * client before committing would still be reading the target's refs (the
 * step before the commit) when git returns.
 */
import { onTestFinished, describe, expect, it, vi } from 'vitest';
import { startDelayRelay } from '../../tools/chaos/delay-relay.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { waitFor } from '../support/state.js';

describe('githa serve and GITHA_TEST_ACK_BEFORE_COMMIT', () => {
  const cluster = useCluster({ backends: 1, repositories: ['ack/app'] });

  it('acknowledges a push only once its version is recorded, even with GITHA_TEST_ACK_BEFORE_COMMIT=1 in its environment', async () => {
    const b1 = cluster().backend('b1');
    const relay = await startDelayRelay(b1.ports.http);
    onTestFinished(() => relay.close());
    vi.stubEnv('GITHA_TEST_ACK_BEFORE_COMMIT', '1');
    onTestFinished(() => {
      vi.unstubAllEnvs();
    });
    // The githa process inherits this process's environment (test/support/githa.ts).
    const githa = await startGitha(cluster(), { backends: { b1: { http: `http://127.0.0.1:${relay.port}/git/` } } });
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const version = async (): Promise<number> => Number((await cluster().redis.cli('HGET', 'githa:repo:{ack/app.git}:versions', 'b1')).trim());

    await git.commit(work, { 'a.txt': '1\n' }, 'first');
    await git.push(work, githa.url('ack/app'), ['main']);
    // The first push's version, once githa has committed it (whenever it answered).
    await waitFor('the first push to be committed', () => githa.logLines().some((l) => l.msg === 'push committed'));
    const before = await version();
    expect(before).toBeGreaterThanOrEqual(1);

    relay.delayMs = 1_500;
    await git.commit(work, { 'a.txt': '2\n' }, 'second');
    await git.push(work, githa.url('ack/app'), ['main']);
    // git has its answer: the version must be recorded already.
    expect(await version()).toBe(before + 1);
  });
});
