/**
 * The verifier (design: "Vocabulary: checksum … detect drift", "Failure
 * modes", "Safety rules" 5): githa compares each backend's live refs with the
 * recorded checksum; a copy changed outside githa is drift. Against real git,
 * Redis and stock backends:
 *
 * - an out-of-band push to b3 is recorded within seconds as drift, in the
 *   push log (`event drift`) and in githa's log ('DRIFT');
 * - the repair (src/cluster/repair.ts) keeps b3's out-of-band commit under
 *   refs/githa/kept/b3/… by a githa write on a leader, which spreads to every
 *   copy, then refills b3: it leads again and takes later pushes;
 * - githa's own pushes, quorum copies and replication are never drift.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { checksumOf, diskRefs, refOnDisk } from '../support/backend-refs.js';
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
  it('records a copy changed out of band as drift, keeps its out-of-band commit on every copy, and refills it (repair without loss)', async () => {
    const c = cluster();
    const repo = 'verify/drift';
    await c.createRepository(repo);
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

    // Within a few seconds: a push-log entry `drift` names b3 with its live checksum, and an error log line.
    const entry = await waitFor('drift of b3 in the push log', async () => (await pushLog(repo)).find((e) => e.event === 'drift'));
    expect(entry).toMatchObject({ backend: 'b3', checksum: liveB3, version: String(recorded.b3) });
    expect((await pushLog(repo)).filter((e) => e.event === 'drift')).toHaveLength(1);
    await waitFor('DRIFT in the log', async () => (githa.logs().includes('DRIFT') ? true : undefined));
    const driftLine = githa.logLines().find((l) => String(l.msg).includes('DRIFT'));
    expect(driftLine).toMatchObject({ repo: `${repo}.git`, backend: 'b3' });
    expect(Number(driftLine!.level)).toBeGreaterThanOrEqual(50); // error

    // The repair keeps b3's out-of-band commit on a leader (a githa write, spread to every copy), then refills b3.
    const kept = await waitFor('the out-of-band commit kept on every copy, b3 refilled', async () => {
      const all = await Promise.all(BACKENDS.map((id) => diskRefs(c.backend(id), repo)));
      const names = Object.keys(all[0]!).filter((n) => n.startsWith('refs/githa/kept/b3/'));
      if (names.length !== 1 || all.some((r) => checksumOf(r) !== checksumOf(all[0]!))) return undefined;
      if ((await redis.hlen(key(repo, 'drift'))) > 0) return undefined;
      return names[0]!;
    }, 20_000);
    expect(kept).toMatch(/^refs\/githa\/kept\/b3\/\d{8}T\d{6}Z\/heads\/oob$/);
    expect(await refOnDisk(b3, repo, kept)).toBe(oob);
    expect(await refOnDisk(b3, repo, 'refs/heads/oob')).toBeUndefined();
    expect(await refOnDisk(b3, repo, 'refs/heads/main')).toBe(base);
    const after = await waitCurrent(c, repo, base);
    expect(leadersOf(after)).toEqual(BACKENDS);
    expect(maxOf(after)).toBe(maxOf(recorded) + 1); // the keeping write
    expect((await pushLog(repo)).find((e) => e.event === 'push' && e.transport === 'repair')).toMatchObject({ user: 'githa' });

    // Reads see main as pushed and the kept commit under its reserved name, never b3's out-of-band branch.
    for (let i = 0; i < 3; i++) {
      const refs = await git.lsRemote(githa.url(repo));
      expect(refs['refs/heads/main']).toBe(base);
      expect(refs[kept]).toBe(oob);
      expect(refs['refs/heads/oob']).toBeUndefined();
    }
    // A later push lands on every copy, b3 included.
    const next = await git.commit(work, { 'b.txt': 'b\n' }, 'third');
    await git.push(work, githa.url(repo), ['main']);
    const final = await waitCurrent(c, repo, next, BACKENDS);
    expect(leadersOf(final)).toEqual(BACKENDS);
    expect(await redis.hgetall(key(repo, 'drift'))).toEqual({});
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
