/**
 * Failures behind the smart-HTTP front end, against real git, Redis and stock
 * backends (design: "Write path", "Failure modes", "Safety rules"):
 *
 * - racing pushes through two githa processes serialize on the Redis lock;
 * - a backend killed in the middle of a push leaves the `writing` marker and
 *   freezes writes (naming the backend and the thaw command) while reads go on;
 * - a dead backend is skipped for reads, and a push whose target refuses
 *   connections goes to another leader;
 * - a client that goes away mid-push leaves no marker and no lock behind;
 * - with Redis down githa fails closed, and recovers once Redis is back.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient, randomData, type GitResult } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { refOnDisk } from '../support/backend-refs.js';

/** What git prints when its push is refused by git's own rules (not an HTTP or githa failure). */
const GIT_REJECTION = /\[rejected\]|\[remote rejected\].*\((failed to update ref|failed to lock|stale info)\)|fetch first|stale info|failed to update ref/;
/** What must not show up in a plain rejection: a proxy or transport failure. */
const TRANSPORT_FAILURE = /githa:|RPC failed|HTTP \d{3}|returned error|unexpected disconnect|hung up|bad band|protocol error/i;

describe('githa smart HTTP under failures', () => {
  const cluster = useCluster({ backends: 3 });

  const key = (repo: string, what: string): string => `githa:repo:{${repo}.git}:${what}`;

  async function hash(k: string): Promise<Record<string, string>> {
    const out = await cluster().redis.cli('HGETALL', k);
    const lines = out.split('\n').filter((l) => l.length > 0);
    const map: Record<string, string> = {};
    for (let i = 0; i + 1 < lines.length; i += 2) map[lines[i]!] = lines[i + 1]!;
    return map;
  }

  async function versions(repo: string): Promise<Record<string, number>> {
    return Object.fromEntries(Object.entries(await hash(key(repo, 'versions'))).map(([b, v]) => [b, Number(v)]));
  }

  function maxOf(v: Record<string, number>): number {
    return Math.max(0, ...Object.values(v));
  }

  function leaders(v: Record<string, number>): string[] {
    const max = maxOf(v);
    return Object.keys(v)
      .filter((b) => v[b] === max)
      .sort();
  }

  async function exists(k: string): Promise<boolean> {
    return (await cluster().redis.cli('EXISTS', k)) === '1';
  }


  /**
   * Creates `repo` on every backend with the same single commit, pushed to each
   * backend directly (githa has not seen it yet): githa adopts it with every
   * backend a leader at version 1.
   */
  async function seedEverywhere(git: GitClient, repo: string): Promise<string> {
    await cluster().createRepository(repo);
    const work = await git.init('seed');
    const sha = await git.commit(work, { 'README.md': `seed of ${repo}\n` }, 'seed');
    for (const b of cluster().backends) await git.push(work, b.url('http', repo), ['main']);
    return sha;
  }

  function output(r: GitResult): string {
    return `${r.stdout}\n${r.stderr}`;
  }

  it('racing pushes to one branch through two githa processes: one wins, the other gets git\'s rejection, nothing is lost', async () => {
    const repo = 'race/same-branch';
    await cluster().createRepository(repo);
    const [g1, g2] = await Promise.all([startGitha(cluster(), { singleCopy: true }), startGitha(cluster(), { singleCopy: true })]);
    const git = GitClient.forCluster(cluster());

    const seed = await git.init('seed');
    await git.commit(seed, { 'README.md': 'race\n' }, 'seed');
    await git.push(seed, g1.url(repo), ['main']);
    const a = await git.clone(g1.url(repo));
    const b = await git.clone(g2.url(repo));

    const rounds = 5;
    const winners: string[] = [];
    for (let round = 1; round <= rounds; round++) {
      // Both clients start from the same state.
      for (const w of [a, b]) {
        await git.run(['fetch', '--quiet', 'origin'], { cwd: w });
        await git.run(['reset', '--quiet', '--hard', 'origin/main'], { cwd: w });
      }
      const base = await git.revParse(a, 'HEAD');
      expect(await git.revParse(b, 'HEAD')).toBe(base);
      const before = await versions(repo);

      const shaA = await git.commit(a, { [`a-${round}.txt`]: `a ${round}\n` }, `a ${round}`);
      const shaB = await git.commit(b, { [`b-${round}.txt`]: `b ${round}\n` }, `b ${round}`);
      // Both pushes start before either is awaited.
      const pushA = git.push(a, g1.url(repo), ['HEAD:refs/heads/main'], [], { allowFailure: true });
      const pushB = git.push(b, g2.url(repo), ['HEAD:refs/heads/main'], [], { allowFailure: true });
      const [ra, rb] = await Promise.all([pushA, pushB]);

      const ok = [ra.code === 0, rb.code === 0];
      expect(ok.filter(Boolean), `round ${round}:\nA: ${output(ra)}\nB: ${output(rb)}`).toHaveLength(1);
      const [win, lose, winSha, loseDir, loseSha] = ra.code === 0 ? [ra, rb, shaA, b, shaB] : [rb, ra, shaB, a, shaA];
      winners.push(ra.code === 0 ? 'A' : 'B');
      expect(win.code).toBe(0);
      // The loser sees git's ordinary rejection, not a proxy failure.
      expect(output(lose)).toMatch(GIT_REJECTION);
      expect(output(lose)).not.toMatch(TRANSPORT_FAILURE);

      // No data lost: the winner's commit is the branch, seen through both githas.
      expect((await git.lsRemote(g1.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(winSha);
      expect((await git.lsRemote(g2.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(winSha);
      const afterRace = await versions(repo);
      expect(maxOf(afterRace)).toBe(maxOf(before) + 1);
      const [leader] = leaders(afterRace);
      expect(leaders(afterRace)).toHaveLength(1);
      expect(await refOnDisk(cluster().backend(leader!), repo, 'refs/heads/main')).toBe(winSha);
      expect(await exists(key(repo, 'writing'))).toBe(false);

      // The loser rebases onto the winner and pushes.
      await git.run(['pull', '--quiet', '--rebase', 'origin', 'main'], { cwd: loseDir });
      const rebased = await git.revParse(loseDir, 'HEAD');
      expect(rebased).not.toBe(loseSha);
      await git.run(['merge-base', '--is-ancestor', winSha, rebased], { cwd: loseDir });
      await git.push(loseDir, loseDir === a ? g1.url(repo) : g2.url(repo), ['HEAD:refs/heads/main']);
      expect((await git.lsRemote(g1.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(rebased);
      expect(maxOf(await versions(repo))).toBe(maxOf(before) + 2);
    }
    expect(winners).toHaveLength(rounds);
    // Every commit of every round is in the history.
    const check = await git.clone(g2.url(repo));
    const log = (await git.run(['log', '--format=%s', 'origin/main'], { cwd: check })).stdout.split('\n');
    for (let round = 1; round <= rounds; round++) {
      expect(log).toContain(`a ${round}`);
      expect(log).toContain(`b ${round}`);
    }
  });

  it('racing pushes to different branches through two githa processes both succeed and advance the version by 2', async () => {
    const repo = 'race/two-branches';
    await cluster().createRepository(repo);
    const [g1, g2] = await Promise.all([startGitha(cluster(), { singleCopy: true }), startGitha(cluster(), { singleCopy: true })]);
    const git = GitClient.forCluster(cluster());
    const seed = await git.init('seed');
    await git.commit(seed, { 'README.md': 'branches\n' }, 'seed');
    await git.push(seed, g1.url(repo), ['main']);
    const a = await git.clone(g1.url(repo));
    const b = await git.clone(g2.url(repo));

    for (let round = 1; round <= 3; round++) {
      const before = await versions(repo);
      const shaA = await git.commit(a, { 'a.txt': `a ${round}\n` }, `a ${round}`);
      const shaB = await git.commit(b, { 'b.txt': `b ${round}\n` }, `b ${round}`);
      const [ra, rb] = await Promise.all([
        git.push(a, g1.url(repo), [`HEAD:refs/heads/topic-a-${round}`], [], { allowFailure: true }),
        git.push(b, g2.url(repo), [`HEAD:refs/heads/topic-b-${round}`], [], { allowFailure: true }),
      ]);
      expect(ra.code, output(ra)).toBe(0);
      expect(rb.code, output(rb)).toBe(0);

      const after = await versions(repo);
      expect(maxOf(after)).toBe(maxOf(before) + 2);
      const refs = await git.lsRemote(g2.url(repo));
      expect(refs[`refs/heads/topic-a-${round}`]).toBe(shaA);
      expect(refs[`refs/heads/topic-b-${round}`]).toBe(shaB);
      // Both landed on the (single) leader's disk.
      expect(leaders(after)).toHaveLength(1);
      const leader = leaders(after)[0]!;
      expect(await refOnDisk(cluster().backend(leader), repo, `refs/heads/topic-a-${round}`)).toBe(shaA);
      expect(await refOnDisk(cluster().backend(leader), repo, `refs/heads/topic-b-${round}`)).toBe(shaB);
      expect(await exists(key(repo, 'writing'))).toBe(false);
    }
  });

  it('a backend killed in the middle of a push: the push fails, writes freeze naming it and githa thaw, reads go on', async () => {
    const repo = 'fail/killed-mid-push';
    const git = GitClient.forCluster(cluster());
    const seedSha = await seedEverywhere(git, repo);
    const githa = await startGitha(cluster());
    // githa adopts the repository: every backend a leader at version 1.
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(seedSha);
    expect(await versions(repo)).toEqual({ b1: 1, b2: 1, b3: 1 });

    const work = await git.clone(githa.url(repo));
    await git.commit(work, { 'big.bin': randomData(40 * 1024 * 1024) }, 'big');

    const redis = new Redis(cluster().redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    onTestFinished(() => {
      redis.disconnect();
    });
    const push = git.push(work, githa.url(repo), ['HEAD:refs/heads/main'], [], { allowFailure: true });
    let pushDone = false;
    void push.then(() => (pushDone = true));

    // The marker names the target while the push is in flight.
    let target: string | null = null;
    const deadline = Date.now() + 30_000;
    while (!target && !pushDone && Date.now() < deadline) {
      target = await redis.hget(key(repo, 'writing'), 'backend');
      if (!target) await new Promise((r) => setTimeout(r, 5));
    }
    expect(target, 'the push finished before its writing marker was seen').toBeTruthy();
    // Kill only once pack bytes have reached the backend (lighttpd spools the body
    // into its upload dir): a kill before the connection would rightly send the
    // push to another leader instead.
    const spool = join(cluster().backend(target!).root, '..', 'lighttpd-tmp');
    const spooled = (): number => readdirSync(spool).reduce((n, f) => n + statSync(join(spool, f)).size, 0);
    while (spooled() < 1024 * 1024 && !pushDone && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(pushDone, 'the push finished before the backend had received 1 MiB').toBe(false);
    await cluster().backend(target!).stop('SIGKILL');
    const killedAt = Date.now();

    // The client is told at once, not left uploading into a connection nobody reads.
    const result = await push;
    expect(Date.now() - killedAt).toBeLessThan(20_000);
    expect(result.code, output(result)).not.toBe(0);
    expect(output(result)).toMatch(/githa: .*b[123]/);
    expect(output(result)).toContain(target!);
    expect(output(result)).toMatch(/was interrupted; it may or may not have been applied, and writes to .* are frozen/);

    // The marker stays: githa cannot know whether the killed backend applied the write.
    const marker = await hash(key(repo, 'writing'));
    expect(marker.backend).toBe(target);
    expect(marker.proxy).toBe(githa.logLines().find((l) => l.msg === 'githa listening')?.proxy);
    // Nothing was committed.
    expect(await versions(repo)).toEqual({ b1: 1, b2: 1, b3: 1 });

    // A new push is refused, naming the interrupted write, the backend and the thaw command.
    const next = await git.init('next');
    await git.commit(next, { 'small.txt': 'small\n' }, 'small');
    const refused = await git.push(next, githa.url(repo), ['main:refs/heads/other'], [], { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/remote: githa: .*frozen for writes/);
    expect(refused.stderr).toContain(`backend ${target}`);
    expect(refused.stderr).toContain(`githa thaw ${repo}.git`);
    expect(await hash(key(repo, 'writing'))).toEqual(marker);

    // Reads go on, served by the other leaders.
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(seedSha);
    for (let i = 0; i < 3; i++) {
      const clone = await git.clone(githa.url(repo));
      expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': seedSha });
    }
    expect(await versions(repo)).toEqual({ b1: 1, b2: 1, b3: 1 });
  });

  it('a dead backend is skipped for reads', async () => {
    const repo = 'fail/dead-reads';
    const git = GitClient.forCluster(cluster());
    const seedSha = await seedEverywhere(git, repo);
    // One githa round robin, one that prefers the dead backend (same zone) and
    // forgets failures at once, so every one of its reads tries it first.
    const roundRobin = await startGitha(cluster());
    const preferDead = await startGitha(cluster(), { zone: 'east', backends: { b2: { zone: 'east' } }, config: { health: { downForMs: 1 } } });
    await git.lsRemote(roundRobin.url(repo));
    expect(await versions(repo)).toEqual({ b1: 1, b2: 1, b3: 1 });

    const seen = new Map([roundRobin, preferDead].map((g) => [g, g.logLines().length]));
    await cluster().backend('b2').stop('SIGKILL');
    for (const githa of [roundRobin, preferDead]) {
      for (let i = 0; i < 6; i++) {
        const clone = await git.clone(githa.url(repo));
        expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': seedSha });
      }
    }
    // No request was answered by b2; reads changed no version.
    for (const githa of [roundRobin, preferDead]) {
      const served = githa
        .logLines()
        .slice(seen.get(githa))
        .filter((l) => l.msg === 'request' && l.repo === `${repo}.git`);
      // Each clone is an advertisement and at least one upload-pack POST.
      expect(served.length).toBeGreaterThanOrEqual(12);
      expect(served.filter((l) => l.backend === 'b2' || l.outcome !== 'ok' || l.status !== 200)).toEqual([]);
    }
    expect(await versions(repo)).toEqual({ b1: 1, b2: 1, b3: 1 });
  });

  it('a push whose target refuses connections goes to another leader and leaves no marker', async () => {
    const git = GitClient.forCluster(cluster());
    const repos = ['fail/refused-1', 'fail/refused-2', 'fail/refused-3'];
    for (const repo of repos) await seedEverywhere(git, repo);
    // b1 is this githa's zone: it is every push's first choice while it is a leader.
    const githa = await startGitha(cluster(), { singleCopy: true, zone: "east", backends: { b1: { zone: "east" } }, config: { health: { downForMs: 1 } } });
    for (const repo of repos) await git.lsRemote(githa.url(repo));
    await cluster().backend('b1').stop('SIGKILL');

    for (const repo of repos) {
      expect(await versions(repo)).toEqual({ b1: 1, b2: 1, b3: 1 });
      const work = await git.clone(githa.url(repo));
      const sha = await git.commit(work, { 'x.txt': `${repo}\n` }, 'after b1 died');
      const r = await git.push(work, githa.url(repo), ['HEAD:refs/heads/main']);
      expect(r.code).toBe(0);
      const v = await versions(repo);
      expect(v.b1).toBe(1);
      expect(maxOf(v)).toBe(2);
      const [leader] = leaders(v);
      expect(leaders(v)).toHaveLength(1);
      expect(leader).not.toBe('b1');
      expect(await refOnDisk(cluster().backend(leader!), repo, 'refs/heads/main')).toBe(sha);
      expect(await exists(key(repo, 'writing'))).toBe(false);
      // githa did try b1 first, and moved on.
      const tried = githa.logLines().filter((l) => l.msg === 'write target unreachable; trying another leader' && l.repo === `${repo}.git`);
      expect(tried.map((l) => l.backend)).toEqual(['b1']);
    }

    // More pushes to one repository: each one commits, no marker remains.
    const repo = repos[0]!;
    const work = await git.clone(githa.url(repo));
    for (let i = 1; i <= 4; i++) {
      const before = maxOf(await versions(repo));
      const sha = await git.commit(work, { 'more.txt': `more ${i}\n` }, `more ${i}`);
      await git.push(work, githa.url(repo), ['HEAD:refs/heads/main']);
      expect(maxOf(await versions(repo))).toBe(before + 1);
      expect(await exists(key(repo, 'writing'))).toBe(false);
      expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(sha);
    }
    expect(await exists(`githa:lock:{${repo}.git}`)).toBe(false);
  });

  it('a client that disconnects in the middle of its push leaves no marker, and the repository stays writable', async () => {
    const repo = 'fail/client-gone';
    const git = GitClient.forCluster(cluster());
    const seedSha = await seedEverywhere(git, repo);
    const githa = await startGitha(cluster());
    await git.lsRemote(githa.url(repo));
    expect(await versions(repo)).toEqual({ b1: 1, b2: 1, b3: 1 });

    const work = await git.clone(githa.url(repo));
    await git.commit(work, { 'big.bin': randomData(40 * 1024 * 1024) }, 'big');
    const redis = new Redis(cluster().redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    onTestFinished(() => {
      redis.disconnect();
    });

    // git push in its own process group, interrupted like a Ctrl-C once githa has started the write.
    const child = spawn('git', ['push', '--', githa.url(repo), 'HEAD:refs/heads/main'], { cwd: work, env: git.environment(), detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let target: string | null = null;
    const deadline = Date.now() + 30_000;
    while (!target && child.exitCode === null && Date.now() < deadline) {
      target = await redis.hget(key(repo, 'writing'), 'backend');
      if (!target) await new Promise((r) => setTimeout(r, 5));
    }
    expect(target, `the push finished before its writing marker was seen; git said: ${stderr}`).toBeTruthy();
    process.kill(-child.pid!, 'SIGINT');
    await exited;

    // githa notices, finds the target's refs unchanged, and clears the marker.
    const until = Date.now() + 20_000;
    while (Date.now() < until && ((await exists(key(repo, 'writing'))) || (await exists(`githa:lock:{${repo}.git}`)))) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await hash(key(repo, 'writing'))).toEqual({});
    expect(await exists(`githa:lock:{${repo}.git}`)).toBe(false);
    expect(await versions(repo)).toEqual({ b1: 1, b2: 1, b3: 1 });
    expect(await refOnDisk(cluster().backend(target!), repo, 'refs/heads/main')).toBe(seedSha);
    // githa is still running, and says what happened.
    expect(githa.proc.exitCode).toBeNull();
    expect(githa.logLines().some((l) => l.msg === 'the push request broke off before its end' && l.repo === `${repo}.git`)).toBe(true);

    // The next push goes through.
    const next = await git.clone(githa.url(repo));
    const sha = await git.commit(next, { 'small.txt': 'small\n' }, 'small');
    await git.push(next, githa.url(repo), ['HEAD:refs/heads/main']);
    expect(maxOf(await versions(repo))).toBe(2);
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(sha);
  });

  it('with Redis down githa fails closed ("cluster state unavailable"), and recovers when Redis is back', async () => {
    const repo = 'fail/redis-down';
    const git = GitClient.forCluster(cluster());
    const seedSha = await seedEverywhere(git, repo);
    const githa = await startGitha(cluster());
    expect((await fetch(`${githa.adminUrl}/readyz`)).status).toBe(200);
    await git.clone(githa.url(repo));
    const work = await git.clone(githa.url(repo));
    await git.commit(work, { 'while-down.txt': 'x\n' }, 'while Redis is down');

    await cluster().redis.stop();

    const clone = await git.run(['clone', '--quiet', '--', githa.url(repo), `${work}-clone-down`], { allowFailure: true });
    expect(clone.code).not.toBe(0);
    expect(clone.stderr).toMatch(/remote: githa: cluster state unavailable/);
    expect(clone.stderr).toMatch(/503/);

    const push = await git.push(work, githa.url(repo), ['HEAD:refs/heads/main'], [], { allowFailure: true });
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/remote: githa: cluster state unavailable/);

    const info = await fetch(`${githa.url(repo)}/info/refs?service=git-upload-pack`);
    expect(info.status).toBe(503);
    expect(info.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await info.text()).toMatch(/^githa: cluster state unavailable/);

    // A receive-pack request that gets as far as the POST is rejected in the protocol, naming the cause.
    const rejection = await postReceivePack(
      `${githa.url(repo)}/git-receive-pack`,
      pkt(`${seedSha} ${'0'.repeat(40)} refs/heads/main\0report-status side-band-64k delete-refs\n`) + '0000',
    );
    expect(rejection.status).toBe(200);
    expect(rejection.body).toContain('cluster state unavailable');
    expect(rejection.body).toMatch(/ng refs\/heads\/main githa: cluster state unavailable/);

    const ready = await fetch(`${githa.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/Redis/);
    expect((await fetch(`${githa.adminUrl}/healthz`)).status).toBe(200);

    // Redis returns (empty: the dev cluster's Redis keeps no data); githa is not restarted.
    await cluster().redis.start();
    const until = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < until) {
      status = (await fetch(`${githa.adminUrl}/readyz`)).status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    const again = await git.clone(githa.url(repo));
    expect(await git.forEachRef(again, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': seedSha });
    const pushed = await git.push(work, githa.url(repo), ['HEAD:refs/heads/main']);
    expect(pushed.code).toBe(0);
    expect(maxOf(await versions(repo))).toBe(2);
    expect(githa.proc.exitCode).toBeNull();
  });
});

function pkt(s: string): string {
  return (Buffer.byteLength(s) + 4).toString(16).padStart(4, '0') + s;
}

function postReceivePack(url: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/x-git-receive-pack-request', accept: 'application/x-git-receive-pack-result' },
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('latin1') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
