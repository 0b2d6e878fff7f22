/**
 * /status paged (docs/observability.md "/status"): a real githa and Redis
 * holding 250 repository records. Page N shows its 100 repositories (most
 * recently written first) with links to the pages around it, the repositories
 * needing attention come first in their own box, `?state=frozen` lists only
 * the frozen ones, and a page stays small whatever the number of repositories.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { repoKey, waitFor } from '../support/state.js';

const N = 250;
const name = (i: number) => `p/r${String(i).padStart(3, '0')}.git`;

describe('/status paged', () => {
  const cluster = useCluster({ backends: 1 });
  let redis: Redis;
  let githa: GithaProcess;

  beforeAll(async () => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    const b = cluster().backends[0]!.id;
    const multi = redis.pipeline();
    // Records only (no copies needed to render a page); r000 written last, so it leads the newest-first list.
    for (let i = 0; i < N; i++) {
      multi.hset(repoKey(name(i), 'versions'), b, '1');
      multi.hset(repoKey(name(i), 'checksums'), b, 'c');
      multi.zadd('githa:repos', String(1_000_000 - i), name(i));
    }
    // Two needing attention, found by the snapshot: frozen r200 and r017.
    for (const i of [200, 17]) multi.hset(repoKey(name(i), 'frozen'), 'reason', 'maintenance', 'detail', 'held', 'since', String(Date.now()));
    await multi.exec();
  });
  afterAll(() => redis.disconnect());

  const get = async (path: string) => {
    const res = await fetch(`${githa.adminUrl}${path}`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const listed = (html: string, section: string) => {
    const part = html.split(`<section id="${section}">`)[1]?.split('</section>')[0] ?? '';
    return [...part.matchAll(/<code>(p\/r\d+\.git)<\/code>/g)].map((m) => m[1]);
  };

  it('shows page N of the list with its links, and the frozen repositories first in their box', async () => {
    // No verifier: these records have no copies, which it would take for drift.
    githa = await startGitha(cluster(), { config: { metrics: { statusRefreshMs: 500 }, verify: { intervalMs: 0 } } });
    await waitFor('the snapshot counts the two frozen repositories', async () => (await get('/status')).includes('Needing attention (2)'));
    const first = await get('/status');
    expect(listed(first, 'attention')).toEqual([name(17), name(200)]);
    expect(listed(first, 'repositories')).toEqual(Array.from({ length: 100 }, (_, i) => name(i)));
    expect(first).toContain('page 1 of 3');
    expect(first).toContain('href="/status?page=2"');

    const second = await get('/status?page=2');
    expect(listed(second, 'repositories')).toEqual(Array.from({ length: 100 }, (_, i) => name(100 + i)));
    expect(second).toContain('page 2 of 3');
    expect(second).toContain('Repositories (250, most recently written first)');
    const third = await get('/status?page=3');
    expect(listed(third, 'repositories')).toHaveLength(50);
    const rowOf200 = third.split('\n').find((l) => l.includes(`<code>${name(200)}</code>`)) ?? '';
    expect(rowOf200).toContain('s-frozen');

    const frozen = await get('/status?state=frozen');
    expect(listed(frozen, 'repositories')).toEqual([name(17), name(200)]);
    expect(frozen).not.toContain('<section id="attention">');
    // 100 rows, not 250: the page stays about the same size at any number of repositories.
    expect(second.length).toBeLessThan(40_000);
  });
});
