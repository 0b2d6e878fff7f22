/**
 * Pure parts of the admin listener: the shared status snapshot's refresh
 * rule, the status pages' escaping, the metrics' label hygiene, and the demo's
 * log formatter.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatLogLine } from '../../src/cli/pretty-log.js';
import { Metrics } from '../../src/admin/metrics.js';
import { StatusCache } from '../../src/admin/status-cache.js';
import { esc, renderStatusPage, repoHref } from '../../src/admin/status-page.js';
import { attentionFirst, parseStatusQuery, statusHref, type StatusRow } from '../../src/admin/status-listing.js';
import type { ClusterStatus } from '../../src/cluster/cluster-status.js';

function status(repos: string[], at = Date.now()): ClusterStatus {
  return {
    at,
    writeQuorum: 2,
    repositories: repos.map((repo) => ({ repo, state: 'frozen', reason: 'maintenance', version: 1, leaders: ['b1'], stale: [], drifted: [], suspect: [] })),
    backends: [{ id: 'b1', enabled: true, writable: true, health: 'down', detail: '<b>refused</b>', leads: repos.length, stale: 0 }],
    counts: { synchronized: 0, partial: 0, unsynchronized: 0, ambiguous: 0, frozen: repos.length },
    backlog: 0,
  };
}

/** Lets every pending promise callback run (a macrotask boundary; the cache's own work is all promises). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('StatusCache', () => {
  // The cache reads its clock from performance.now(): fake it, and move it by hand.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['performance', 'Date', 'setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('loads once, serves the snapshot until refreshMs, then refreshes in the background', async () => {
    let loads = 0;
    let finish: (() => void) | undefined;
    const cache = new StatusCache(async () => {
      const n = ++loads;
      // The second load stays pending until the test lets it finish.
      if (n > 1) await new Promise<void>((r) => (finish = r));
      return status(Array.from({ length: n }, (_, i) => `r${i}`));
    }, 100);
    expect((await cache.get()).repositories).toHaveLength(1);
    expect((await Promise.all([cache.get(), cache.get(), cache.get()])).map((s) => s.repositories.length)).toEqual([1, 1, 1]);
    vi.advanceTimersByTime(99);
    expect((await cache.get()).repositories).toHaveLength(1);
    expect(loads).toBe(1);
    vi.advanceTimersByTime(1);
    // Due: the old snapshot is served while the new one loads, and only one load runs.
    expect((await cache.get()).repositories).toHaveLength(1);
    expect((await cache.get()).repositories).toHaveLength(1);
    expect(loads).toBe(2);
    finish!();
    await settle();
    expect((await cache.get()).repositories).toHaveLength(2);
    expect(loads).toBe(2);
  });

  it('keeps the last snapshot when a refresh fails, and reports the failure', async () => {
    let fail = false;
    const errors: unknown[] = [];
    const cache = new StatusCache(async () => {
      if (fail) throw new Error('redis down');
      return status(['a']);
    }, 1, (err) => errors.push(err));
    await cache.get();
    fail = true;
    vi.advanceTimersByTime(5);
    expect((await cache.get()).repositories).toHaveLength(1);
    await settle();
    expect(errors).toHaveLength(1);
    expect((await cache.get()).repositories).toHaveLength(1);
    const empty = new StatusCache(async () => Promise.reject(new Error('redis down')), 1000);
    await expect(empty.get()).rejects.toThrow('redis down');
  });
});

describe('status page', () => {
  it('escapes repository names and details, and links with the URL-encoded name', () => {
    const snap = status(['a/<script>x</script>.git']);
    const html = renderStatusPage(snap, { query: { page: 1 }, rows: snap.repositories, total: 1, pages: 1, attention: [], attentionTotal: 0 }, { proxyId: 'p"1' });
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<b>refused');
    expect(html).toContain('a/&#60;script&#62;x&#60;/script&#62;.git');
    expect(html).toContain(`href="${esc(repoHref('a/<script>x</script>.git'))}"`);
    expect(repoHref('team/app.git')).toBe('/status/repo/team%2Fapp.git');
    // States in words, not colour alone.
    expect(html).toMatch(/class="state s-frozen"[^>]*>frozen</);
  });
  it('orders repositories needing attention first (frozen, ambiguous, unsynchronized, partial), then by name, without the synchronized', () => {
    const row = (repo: string, state: StatusRow['state']): StatusRow => ({ repo, state, version: 1, leaders: [], stale: [], drifted: [], suspect: [] });
    const rows = [row('a.git', 'synchronized'), row('b.git', 'partial'), row('c.git', 'frozen'), row('d.git', 'unsynchronized'), row('e.git', 'ambiguous'), row('a2.git', 'frozen')];
    expect(attentionFirst(rows).map((r) => `${r.state} ${r.repo}`)).toEqual(['frozen a2.git', 'frozen c.git', 'ambiguous e.git', 'unsynchronized d.git', 'partial b.git']);
  });

  it('reads ?page=N&state=S, anything invalid as the first page of the whole list, and links back to it', () => {
    expect(parseStatusQuery('?page=3')).toEqual({ page: 3 });
    expect(parseStatusQuery('?page=2&state=frozen')).toEqual({ page: 2, state: 'frozen' });
    for (const bad of ['', '?page=0', '?page=-1', '?page=1.5', '?page=x', '?state=synchronized', '?state=<b>']) expect(parseStatusQuery(bad)).toEqual({ page: 1 });
    expect(statusHref({ page: 1 })).toBe('/status');
    expect(statusHref({ page: 4, state: 'partial' })).toBe('/status?state=partial&page=4');
  });

  it('shows the page it is given with links to the pages around it, and the attention box above the list', () => {
    const snap = status(['held.git']);
    const html = renderStatusPage(snap, { query: { page: 2 }, rows: [{ ...snap.repositories[0]!, repo: 'p2.git', state: 'synchronized', reason: undefined }], total: 250, pages: 3, attention: snap.repositories, attentionTotal: 1 }, { proxyId: 'p' });
    expect(html).toContain('page 2 of 3');
    expect(html).toContain('href="/status?page=3"');
    expect(html).toContain('href="/status"');
    expect(html.indexOf('held.git')).toBeLessThan(html.indexOf('p2.git'));
    expect(html).toContain('<section id="attention">');
  });
});

describe('metrics', () => {
  it('folds unexpected label values into "other"', async () => {
    const m = new Metrics();
    m.request({ transport: 'http', service: 'git-upload-pack', outcome: 'team/secret repo', seconds: 0.1, bytes: 10 });
    const { body } = await m.scrape();
    expect(body).toContain('githa_requests_total{transport="http",service="git-upload-pack",outcome="other"} 1');
    expect(body).not.toContain('secret');
  });
});

describe('formatLogLine', () => {
  it('turns a pino line into HH:MM:SS level msg key=value', () => {
    const time = new Date(2026, 0, 2, 3, 4, 5).getTime();
    const line = JSON.stringify({ level: 40, time, pid: 1, hostname: 'h', svc: 'githa', msg: 'backend down', backend: 'b2', detail: 'connect refused', n: 3 });
    expect(formatLogLine(line)).toBe('03:04:05 warn  backend down backend=b2 detail="connect refused" n=3');
    expect(formatLogLine('not json')).toBe('not json');
  });
});
