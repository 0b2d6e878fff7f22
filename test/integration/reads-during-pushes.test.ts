/**
 * A read of a repository whose only leader takes push after push (docs/architecture.md "Verified copies" 1,
 * "A read"): each listing githa fetches may show a push that is landing but not recorded yet. Such an answer
 * is not served (the push is not acknowledged), and the read waits for the push to be recorded, as a route
 * waits for one (catchUp.readWaitMs), however many land one after another; before, a second landing push
 * made the read fail with 503 "no leader … answered with its recorded refs" (found by `npm run bench`'s F4:
 * 8 pushers through 2 githas).
 *
 * Deterministic: the backend's listings pass through a gate the test opens one at a time, and each "push" is
 * a write marker plus a held lock in Redis and a ref moved on the backend's disk, recorded by the test.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
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

/** An HTTP relay to the backend that holds each request `held` matches until the test lets one through (health probes pass). */
async function gatedRelay(target: string, held: RegExp): Promise<{ url: string; held: () => number; pass: () => void; shut: () => void; openAll: () => void; close: () => void }> {
  const waiting: Array<() => void> = [];
  let open = true;
  const t = new URL(target);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const forward = (): void => {
      const out = request({ host: t.hostname, port: t.port, method: req.method, path: `${t.pathname.replace(/\/$/, '')}${req.url!.replace(/^\/git/, '')}`, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      out.on('error', () => res.destroy());
      req.pipe(out);
    };
    if (open || !held.test(req.url ?? '')) forward();
    else waiting.push(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/git/`,
    held: () => waiting.length,
    pass: () => waiting.shift()?.(),
    shut: () => {
      open = false;
    },
    openAll: () => {
      open = true;
      for (const f of waiting.splice(0)) f();
    },
    close: () => server.close(),
  };
}

describe('a read while pushes land one after another on the only leader', () => {
  it('waits for each to be recorded and is served the recorded refs, never refused', async () => {
    const c = cluster();
    const repo = 'busy/app';
    const b1 = c.backend('b1');
    const git = GitClient.forCluster(c);
    const gate = await gatedRelay(b1.httpUrl, /\/busy\/app(\.git)?\/info\/refs\?service=git-upload-pack/);
    const gated = await startGitha(c, {
      backends: { b1: { http: gate.url } },
      config: { verify: { intervalMs: 0 }, replication: { background: false }, catchUp: { readWaitMs: 30_000 } },
    });
    const work = await git.init('work');
    await git.commit(work, { 'README.md': 'one\n' }, 'first');
    await git.push(work, gated.url(repo), ['main']);
    gate.shut();

    /** Pushes landing on b1 and then recorded, made by hand (test/support/landing-push.ts). */
    const { landing, recorded } = landingPushes(redis, b1, repo);
    const dropped = (): number => gated.logLines().filter((l) => l.msg === 'a copy answered what its record does not say; the read goes to another leader').length;

    // Protocol v0: the listing is the GET's answer (v2 sends it in an ls-refs POST), checked the same way.
    const read = gitRunning(git, ['-c', 'protocol.version=0', 'ls-remote', gated.url(repo), 'refs/heads/main'], work);
    await waitFor('the first listing to reach the gate', () => read.stderr() === '' && gate.held() === 1);
    // Push 1 lands while githa's listing is on its way: the listing shows it, the record does not.
    await landing();
    gate.pass();
    await waitFor('githa to drop the listing that shows push 1', () => dropped() === 1, 10_000, { detail: () => gated.logs().split('\n').filter((l) => !l.includes('"msg":"request"') || l.includes('info')).slice(-8).join('\n') });
    await recorded();
    await waitFor('the second listing to reach the gate', () => read.stderr() === '' && gate.held() === 1);
    // Push 2 lands before that listing is answered: again not served, and again waited for.
    const last = await landing();
    gate.pass();
    await waitFor('githa to drop the listing that shows push 2', () => dropped() === 2);
    await recorded();
    gate.openAll();
    expect(await read.exit, read.text()).toBe(0);
    const out = (await git.run(['ls-remote', gated.url(repo), 'refs/heads/main'])).stdout;
    expect(out.split(/\s/)[0]).toBe(last);
    gate.close();
  });
});
