/**
 * The verifier (design: "Vocabulary: checksum … detect drift", "Failure
 * modes", "Safety rules" 5): githa compares each backend's live refs with the
 * recorded checksum; a copy changed outside githa is drift. Against real git,
 * Redis and stock backends:
 *
 * - an out-of-band push to b3 is recorded within seconds in
 *   `githa:repo:{R}:drift` (b3 → "<live checksum> <ms>"), in the push log
 *   (`event drift`) and in githa's log ('DRIFT');
 * - reads through githa go on and are never served from b3 (its extra ref is
 *   never seen); pushes go on, and b3's out-of-band change is never
 *   overwritten by quorum copies or background replication;
 * - once b3's refs are back at the recorded state the drift entry disappears,
 *   and b3 is an ordinary stale copy again that replication brings up to date.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { checksumOf, diskRefs, gitDir, refOnDisk } from '../support/backend-refs.js';
import { leadersOf, maxOf } from '../support/state.js';
import { waitFor } from '../support/wait.js';

const BACKENDS = ['b1', 'b2', 'b3'];

const cluster = useCluster({ backends: 3 });
let redis: Redis;

beforeAll(() => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(() => {
  redis?.disconnect();
});

const key = (repo: string, what: string): string => `githa:repo:{${repo}.git}:${what}`;

async function versions(repo: string): Promise<Record<string, number>> {
  const h = await redis.hgetall(key(repo, 'versions'));
  return Object.fromEntries(Object.entries(h).map(([b, v]) => [b, Number(v)]));
}

/**
 * Waits for a whole verification of `repo` by the (single) githa with a verifier that starts after this call.
 * Evidence in Redis: the verifier takes githa:verify:{R} (SET NX PX 0.9 × verify.intervalMs) right before it verifies
 * R. A new lock shows as the key appearing or its PTTL going up; the first new one after this call starts a
 * verification, and the second comes from a later sweep, which starts only once that one has finished.
 */
async function verifiedAfterNow(repo: string): Promise<void> {
  const lock = `githa:verify:{${repo}.git}`;
  let last = await redis.pttl(lock);
  let taken = 0;
  await waitFor(`two verifications of ${repo}`, async () => {
    const now = await redis.pttl(lock);
    if (now > 0 && now > last) taken++;
    last = now;
    return taken >= 2;
  }, 15_000, { intervalMs: 10 });
}

/** Waits until `backends` have main at `sha` on disk and Redis records them at the highest version with their checksum. */
async function waitCurrent(c: DevCluster, repo: string, sha: string, backends: string[] = BACKENDS): Promise<Record<string, number>> {
  return waitFor(`${backends.join(',')} current at ${sha}`, async () => {
    const v = await versions(repo);
    const recorded = await redis.hgetall(key(repo, 'checksums'));
    for (const id of backends) {
      const b = c.backend(id);
      if ((await refOnDisk(b, repo, 'refs/heads/main')) !== sha) return undefined;
      if (v[id] !== maxOf(v)) return undefined;
      if (recorded[id] !== checksumOf(await diskRefs(b, repo))) return undefined;
    }
    return v;
  });
}

async function pushLog(repo: string): Promise<Array<Record<string, string>>> {
  const entries = await redis.xrange(key(repo, 'log'), '-', '+');
  return entries.map(([, fields]) => {
    const e: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) e[fields[i]!] = fields[i + 1]!;
    return e;
  });
}

describe('the verifier', () => {
  it('records a copy changed out of band as drift, keeps it out of reads and writes, and forgets the drift once the copy is restored', async () => {
    const c = cluster();
    const repo = 'verify/drift';
    await c.createRepository(repo);
    // A short scan interval so a copy that stops drifting is caught up within the test.
    const githa = await startGitha(c, { config: { verify: { intervalMs: 500, perSecond: 50 }, replication: { scanIntervalMs: 1_000 } } });
    const git = GitClient.forCluster(c);

    const work = await git.init('work');
    await git.commit(work, { 'README.md': 'drift\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    const base = await git.commit(work, { 'a.txt': 'a\n' }, 'second');
    await git.push(work, githa.url(repo), ['main']);
    const recorded = await waitCurrent(c, repo, base);
    const b3 = c.backend('b3');
    const recordedB3 = (await redis.hgetall(key(repo, 'checksums'))).b3!;
    // Verification of an unchanged cluster finds nothing.
    await verifiedAfterNow(repo);
    expect(await redis.hgetall(key(repo, 'drift'))).toEqual({});
    expect(githa.logs()).not.toContain('DRIFT');

    // Out of band: a new branch pushed straight to b3.
    const side = await git.clone(b3.url('http', repo));
    const oob = await git.commit(side, { 'oob.txt': 'only on b3\n' }, 'out of band');
    await git.push(side, b3.url('http', repo), ['main:refs/heads/oob']);
    expect(await refOnDisk(b3, repo, 'refs/heads/oob')).toBe(oob);
    const liveB3 = checksumOf(await diskRefs(b3, repo));
    expect(liveB3).not.toBe(recordedB3);

    // Within a few seconds: the drift hash names b3 with its live checksum and a time; a push-log entry; an error log line.
    const t0 = Date.now();
    const drift = await waitFor('drift of b3 recorded', async () => {
      const h = await redis.hgetall(key(repo, 'drift'));
      return h.b3 ? h : undefined;
    });
    expect(Object.keys(drift)).toEqual(['b3']);
    const [checksum, at] = drift.b3!.split(' ');
    expect(checksum).toBe(liveB3);
    expect(Number(at)).toBeGreaterThan(t0 - 60_000);
    expect(Number(at)).toBeLessThanOrEqual(Date.now() + 1_000);
    const entries = (await pushLog(repo)).filter((e) => e.event === 'drift');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ backend: 'b3', checksum: liveB3, version: String(recorded.b3) });
    await waitFor('DRIFT in the log', async () => (githa.logs().includes('DRIFT') ? true : undefined));
    const driftLine = githa.logLines().find((l) => String(l.msg).includes('DRIFT'));
    expect(driftLine).toMatchObject({ repo: `${repo}.git`, backend: 'b3' });
    expect(Number(driftLine!.level)).toBeGreaterThanOrEqual(50); // error
    // The record itself is untouched: b3 keeps its recorded version and checksum.
    expect(await versions(repo)).toEqual(recorded);
    expect((await redis.hgetall(key(repo, 'checksums'))).b3).toBe(recordedB3);

    // Reads go on and never come from b3: its extra branch is never seen.
    for (let i = 0; i < 6; i++) {
      const refs = await git.lsRemote(githa.url(repo));
      expect(refs['refs/heads/main']).toBe(base);
      expect(refs['refs/heads/oob'], `ls-remote ${i} was served by b3`).toBeUndefined();
    }
    for (let i = 0; i < 3; i++) {
      const clone = await git.clone(githa.url(repo));
      const refs = await git.forEachRef(clone, 'refs/remotes/');
      expect(refs['refs/remotes/origin/main']).toBe(base);
      expect(refs['refs/remotes/origin/oob'], `clone ${i} was served by b3`).toBeUndefined();
    }

    // A push through githa succeeds, lands on b1 and b2, and never touches b3.
    const next = await git.commit(work, { 'b.txt': 'b\n' }, 'third');
    await git.push(work, githa.url(repo), ['main']);
    const afterPush = await waitCurrent(c, repo, next, ['b1', 'b2']);
    expect(leadersOf(afterPush)).toEqual(['b1', 'b2']);
    expect(afterPush.b3).toBe(recorded.b3);
    // Background replication sees b3 stale too, and must leave it alone. Its evidence: a second githa, acknowledging
    // on one copy (writeQuorum 1, no verifier of its own), leaves b1 or b2 behind as well; the replicator's catch-up
    // of that copy to the new version is the round that also weighed b3, stale and drifted.
    const single = await startGitha(c, { proxyId: 'single', config: { verify: { intervalMs: 0 }, replication: { writeQuorum: 1, scanIntervalMs: 1_000 } } });
    const latest = await git.commit(work, { 'c.txt': 'c\n' }, 'fourth');
    await git.push(work, single.url(repo), ['main']);
    const pushed = (await pushLog(repo)).filter((e) => e.event === 'push').at(-1)!;
    expect(pushed.copies ?? '').toBe('');
    expect(['b1', 'b2']).toContain(pushed.backend);
    const behind = pushed.backend === 'b1' ? 'b2' : 'b1';
    const caughtUp = (l: Record<string, unknown>): boolean =>
      l.component === 'replicator' && l.msg === 'catch-up' && l.repo === `${repo}.git` && l.target === behind && l.version === Number(pushed.version) && l.status === 'OK';
    await waitFor(`${behind} caught up by the replicator`, () => [...githa.logLines(), ...single.logLines()].some(caughtUp));
    const afterCatchUp = await waitCurrent(c, repo, latest, ['b1', 'b2']);
    expect(leadersOf(afterCatchUp)).toEqual(['b1', 'b2']);
    expect(await refOnDisk(b3, repo, 'refs/heads/oob')).toBe(oob);
    expect(await refOnDisk(b3, repo, 'refs/heads/main')).toBe(base);
    expect(checksumOf(await diskRefs(b3, repo))).toBe(liveB3);
    expect((await versions(repo)).b3).toBe(recorded.b3);
    expect((await redis.hgetall(key(repo, 'drift'))).b3).toBeDefined();
    for (let i = 0; i < 3; i++) {
      const refs = await git.lsRemote(githa.url(repo));
      expect(refs['refs/heads/main']).toBe(latest);
      expect(refs['refs/heads/oob']).toBeUndefined();
    }
    await single.stop();

    // Restore b3 to its recorded refs: delete the out-of-band branch on its disk.
    await gitDir(b3, repo, ['update-ref', '-d', 'refs/heads/oob', oob]);
    expect(checksumOf(await diskRefs(b3, repo))).toBe(recordedB3);
    await waitFor('drift of b3 cleared', async () => ((await redis.hexists(key(repo, 'drift'), 'b3')) === 0 ? true : undefined));
    expect(await redis.hgetall(key(repo, 'drift'))).toEqual({});

    // b3 is an ordinary stale copy again: replication brings it up to date, and it leads with the others.
    const final = await waitCurrent(c, repo, latest, BACKENDS);
    expect(leadersOf(final)).toEqual(BACKENDS);
    expect(await refOnDisk(b3, repo, 'refs/heads/oob')).toBeUndefined();
    expect(githa.logs()).toContain('drift resolved');
  });
  it('never takes githa\'s own pushes, quorum copies or background replication for drift', async () => {
    const c = cluster();
    const repo = 'verify/no-false-drift';
    await c.createRepository(repo);
    // Verification as often as possible, while pushes and copies run.
    const githa = await startGitha(c, { config: { verify: { intervalMs: 100, perSecond: 200 }, replication: { scanIntervalMs: 500 } } });
    const git = GitClient.forCluster(c);
    const work = await git.init('work');
    // Evidence that the verifier ran meanwhile: its per-repository lock (githa:verify:{R}) shows up in Redis.
    let verifierSeen = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        if ((await redis.exists(`githa:verify:{${repo}.git}`)) === 1) verifierSeen++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    let sha = '';
    for (let i = 1; i <= 25; i++) {
      sha = await git.commit(work, { 'n.txt': `${i}\n` }, `push ${i}`);
      await git.push(work, githa.url(repo), ['main']);
    }
    await waitCurrent(c, repo, sha);
    // And once more over the final state, from start to end.
    await verifiedAfterNow(repo);
    sampling = false;
    await sampler;
    expect(verifierSeen).toBeGreaterThan(0);
    expect(await redis.hgetall(key(repo, 'drift'))).toEqual({});
    expect((await pushLog(repo)).filter((e) => e.event === 'drift')).toEqual([]);
    expect(githa.logs()).not.toContain('DRIFT');
  });
});
