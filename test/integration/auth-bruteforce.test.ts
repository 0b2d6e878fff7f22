/**
 * Password guessing against HTTP `auth.http.mode: githa` (issue 19 item 4;
 * docs/security.md "Brute force"), against real githa, real git and a real
 * backend:
 *
 * - eight concurrent clients sending wrong passwords do not stall githa's
 *   event loop (bcrypt runs in worker threads): githa's own
 *   monitorEventLoopDelay (prom-client's nodejs_eventloop_lag_* on /metrics)
 *   stays far below one bcrypt verification, and a legitimate ls-remote stays
 *   near its unloaded time;
 * - a failure takes as long for a token user and an unknown user as for a
 *   bcrypt user;
 * - repeated failures per user and per address get 429 + Retry-After, and a
 *   full verification queue 503 + Retry-After, with a metric.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { bcrypt, bcryptVerify } from 'hash-wasm';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: string;
  ms: number;
}

/** GET info/refs of `repo` as `user:password`, from the loopback address `from` (127.0.0.0/8). */
function login(githa: GithaProcess, repo: string, user: string, password: string, from = '127.0.0.1'): Promise<Answer> {
  const { port } = new URL(githa.httpUrl);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      localAddress: from,
      path: `/${repo}.git/info/refs?service=git-upload-pack`,
      agent: false,
      headers: { connection: 'close', authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: Buffer.concat(parts).toString(), ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function metric(githa: GithaProcess, name: string): Promise<number> {
  const text = await (await fetch(`${githa.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const QUIET = { verify: { intervalMs: 0 }, replication: { background: false } };
const REPO = 'brute/app';
const ACCESS = { default: 'none', rules: [{ repos: 'brute/**', users: ['*'], access: 'read' }] };

describe('HTTP password guessing (auth.http.mode githa)', () => {
  const cluster = useCluster({ backends: 1, repositories: [REPO] });

  it('wrong passwords are verified off the event loop, and failures take as long for token, bcrypt and unknown users', async () => {
    const c = cluster();
    // Cost 10: what `htpasswd -B -C 10` writes; tens of milliseconds a verification.
    const hash = (password: string): Promise<string> => bcrypt({ password, salt: randomBytes(16), costFactor: 10, outputType: 'encoded' });
    const alice = await hash('alice-pw');
    const tokenSecret = randomBytes(24).toString('hex');
    const usersFile = join(c.dir, 'brute-users');
    writeFileSync(usersFile, `alice:${alice}\nbob:${await hash('bob-pw')}\nci:$sha256$${createHash('sha256').update(tokenSecret).digest('hex')}\n`);
    // What one verification blocks a thread for, on this machine now.
    const t0 = performance.now();
    await bcryptVerify({ password: 'wrong', hash: alice });
    const bcryptMs = performance.now() - t0;
    const githa = await startGitha(c, {
      endpoints: ['http'],
      // No throttling here: every wrong password reaches a verification.
      config: { ...QUIET, auth: { http: { mode: 'githa', usersFile, maxFailuresPerAddress: 0, maxFailuresPerUser: 0 } }, access: ACCESS },
    });
    const git = GitClient.forCluster(c);
    const legit = githa.url(REPO).replace('http://', 'http://alice:alice-pw@');
    await git.run(['ls-remote', legit]); // verifies and remembers alice's password
    let unloaded = Infinity;
    for (let i = 0; i < 3; i++) {
      const s = performance.now();
      await git.run(['ls-remote', legit]);
      unloaded = Math.min(unloaded, performance.now() - s);
    }

    // Eight clients guess bob's password, 6 guesses each; a legitimate ls-remote runs meanwhile.
    await metric(githa, 'nodejs_eventloop_lag_mean_seconds'); // a scrape resets githa's event-loop histogram
    let guesses = 0;
    const attack = Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 6; i++) {
          expect((await login(githa, REPO, 'bob', `guess-${randomBytes(6).toString('hex')}`)).status).toBe(401);
          guesses++;
        }
      }),
    );
    while (guesses < 8) await new Promise((r) => setTimeout(r, 10));
    const s = performance.now();
    await git.run(['ls-remote', legit]);
    const loaded = performance.now() - s;
    const stillGuessing = guesses < 48;
    await attack;
    const lagMean = (await metric(githa, 'nodejs_eventloop_lag_mean_seconds')) * 1000;
    const lagP90 = (await metric(githa, 'nodejs_eventloop_lag_p90_seconds')) * 1000;
    // Verifying on the event loop, it stalls a whole verification at a time, back to back.
    expect(lagMean, `event-loop lag mean ${lagMean} ms, p90 ${lagP90} ms; one verification ${bcryptMs} ms`).toBeLessThan(bcryptMs / 3);
    expect(lagP90).toBeLessThan(bcryptMs);
    expect(stillGuessing).toBe(true);
    expect(loaded, `ls-remote ${loaded} ms under attack, ${unloaded} ms unloaded`).toBeLessThan(3 * unloaded + 3 * bcryptMs);

    // Failures, interleaved: a bcrypt user, a token user, an unknown user.
    const times: Record<'bcrypt' | 'token' | 'unknown', number[]> = { bcrypt: [], token: [], unknown: [] };
    for (let i = 0; i < 9; i++) {
      for (const [kind, user] of [['bcrypt', 'bob'], ['token', 'ci'], ['unknown', `nobody${i}`]] as const) {
        const a = await login(githa, REPO, user, `wrong-${randomBytes(6).toString('hex')}`);
        expect(a.status).toBe(401);
        times[kind].push(a.ms);
      }
    }
    const [b, t, u] = [median(times.bcrypt), median(times.token), median(times.unknown)];
    const summary = `median failure: bcrypt ${b.toFixed(1)} ms, token ${t.toFixed(1)} ms, unknown ${u.toFixed(1)} ms`;
    expect(Math.abs(t - b), summary).toBeLessThan(0.35 * b);
    expect(Math.abs(u - b), summary).toBeLessThan(0.35 * b);
    // The token still works, and fast enough to be the same answer.
    expect((await login(githa, REPO, 'ci', tokenSecret)).status).toBe(200);
    expect(await metric(githa, 'githa_auth_failures_total')).toBeGreaterThanOrEqual(48 + 27);
    expect(githa.logs()).not.toContain('guess-');
  });

  it('repeated failures get 429 + Retry-After per user and per address; a full verification queue gets 503', async () => {
    const c = cluster();
    const hash = (password: string): Promise<string> => bcrypt({ password, salt: randomBytes(16), costFactor: 10, outputType: 'encoded' });
    const usersFile = join(c.dir, 'throttle-users');
    writeFileSync(usersFile, `bob:${await hash('bob-pw')}\ncarol:${await hash('carol-pw')}\n`);
    const githa = await startGitha(c, {
      endpoints: ['http'],
      config: {
        ...QUIET,
        auth: { http: { mode: 'githa', usersFile, verifyWorkers: 1, verifyQueue: 1, failureWindowMs: 60_000, maxFailuresPerAddress: 4, maxFailuresPerUser: 3 } },
        access: ACCESS,
      },
    });
    // A full queue: one verification runs, one waits, the rest are refused at once (and not counted as failures).
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => login(githa, REPO, `u${i}`, 'x', '127.0.0.4')));
    const busy = burst.filter((a) => a.status === 503);
    expect(busy.length).toBeGreaterThanOrEqual(1);
    expect(burst.filter((a) => a.status === 401).length).toBeGreaterThanOrEqual(2);
    expect(busy[0]!.retryAfter).toBe('5');
    expect(busy[0]!.body).toContain('githa: too many password checks are waiting');

    // bob logs in once (remembered), then someone guesses his password from another address.
    expect((await login(githa, REPO, 'bob', 'bob-pw', '127.0.0.1')).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await login(githa, REPO, 'bob', `guess${i}`, '127.0.0.2')).status).toBe(401);
    // Per user: the next try for bob, from any address, is refused without a check, even with the right password…
    const throttled = await login(githa, REPO, 'bob', 'bob-pw-new', '127.0.0.3');
    expect(throttled.status).toBe(429);
    expect(Number(throttled.retryAfter)).toBeGreaterThan(0);
    expect(Number(throttled.retryAfter)).toBeLessThanOrEqual(60);
    expect(throttled.body).toContain('githa: too many failed logins');
    // A guess remembered as wrong is no way around it: the same guess again is refused unchecked too.
    expect((await login(githa, REPO, 'bob', 'guess0', '127.0.0.3')).status).toBe(429);
    // git shows the refusal.
    const run = await GitClient.forCluster(c).run(['ls-remote', githa.url(REPO).replace('http://', 'http://bob:guess9@')], { allowFailure: true });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/429|too many failed logins/);
    // …but bob's own remembered login still works, and other users are not affected.
    expect((await login(githa, REPO, 'bob', 'bob-pw', '127.0.0.1')).status).toBe(200);
    expect((await login(githa, REPO, 'carol', 'carol-pw', '127.0.0.3')).status).toBe(200);
    // Per address: 127.0.0.2's fourth failure (another user) blocks that address for everybody.
    expect((await login(githa, REPO, 'carol', 'guess', '127.0.0.2')).status).toBe(401);
    const byAddress = await login(githa, REPO, 'carol', 'carol-pw-2', '127.0.0.2');
    expect(byAddress.status).toBe(429);
    expect(Number(byAddress.retryAfter)).toBeGreaterThan(0);


    expect(await metricWith(githa, 'githa_auth_failures_total', 'throttled')).toBeGreaterThanOrEqual(3);
    expect(await metricWith(githa, 'githa_auth_failures_total', 'busy')).toBe(busy.length);
    expect(githa.logLines().some((l) => l.code === 'GITHA_ERR_AUTHENTICATION_THROTTLED' && l.user === 'bob')).toBe(true);
    expect(githa.logs()).not.toContain('bob-pw');
  });
});

async function metricWith(githa: GithaProcess, name: string, outcome: string): Promise<number> {
  const text = await (await fetch(`${githa.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{outcome="${outcome}"}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}
