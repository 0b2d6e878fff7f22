/**
 * /metrics on the admin listener of a real githa: the request counters carry
 * transport, service and outcome (never a repository or a user), per
 * configured backend too, and a scrape reads the cached status snapshot
 * instead of scanning Redis; githa_redis_up follows a paused Redis.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

const REPO = 'metrics/very-secret-name';

async function scrape(adminUrl: string): Promise<string> {
  const res = await fetch(`${adminUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** The value of one sample, e.g. `githa_requests_total{transport="http",service="git-upload-pack",outcome="ok"}`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const have = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[2]);
  }
  return undefined;
}

function repositoriesTotal(text: string): number {
  return ['synchronized', 'partial', 'unsynchronized', 'ambiguous', 'frozen'].reduce((n, state) => n + (sample(text, 'githa_repositories', { state }) ?? 0), 0);
}

async function zscanCalls(cli: (...args: string[]) => Promise<string>): Promise<number> {
  const info = await cli('INFO', 'commandstats');
  return Number(/cmdstat_zscan:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

describe('/metrics', () => {
  const cluster = useCluster({ backends: 3 });

  it('counts requests by transport, service and outcome, names no repository or user, and never scans per scrape', async () => {
    // A refresh interval longer than the test: after the first scrape the snapshot stays as it is.
    const githa = await startGitha(cluster(), {
      ssh: true,
      git: true,
      config: { metrics: { statusRefreshMs: 600_000 }, replication: { scanIntervalMs: 600_000 }, verify: { intervalMs: 0 } },
    });
    const git = GitClient.forCluster(cluster(), { knownHostsPath: githa.knownHostsPath });
    await cluster().createRepository(`${REPO}.git`);
    const work = await git.init('metrics');
    await git.commit(work, { 'a.txt': 'one\n' }, 'first');
    await git.push(work, githa.url(REPO), ['main']);
    await git.clone(githa.url(REPO));
    await git.clone(githa.sshUrl(REPO));
    await git.clone(githa.gitUrl(REPO));

    const text = await scrape(githa.adminUrl);
    expect(sample(text, 'githa_requests_total', { transport: 'http', service: 'git-upload-pack', outcome: 'ok' })).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'githa_requests_total', { transport: 'http', service: 'git-receive-pack', outcome: 'committed' })).toBe(1);
    expect(sample(text, 'githa_requests_total', { transport: 'ssh', service: 'git-upload-pack', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'githa_requests_total', { transport: 'git', service: 'git-upload-pack', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'githa_request_duration_seconds_count', { transport: 'ssh', service: 'git-upload-pack' })).toBe(1);
    expect(sample(text, 'githa_request_bytes_sum', { transport: 'http', service: 'git-receive-pack' })).toBeGreaterThan(0);
    expect(sample(text, 'githa_lock_wait_seconds_count', { outcome: 'acquired' })).toBeGreaterThanOrEqual(1);
    // writeQuorum 2 of 3: at least one copy made while the push waited.
    expect(sample(text, 'githa_quorum_copies_total', { outcome: 'copied' })).toBeGreaterThanOrEqual(1);
    for (const b of ['b1', 'b2', 'b3']) expect(sample(text, 'githa_backend_up', { backend: b })).toBe(1);
    // Per backend (issue 21): the push's target, and each clone's copy; the configured ids only.
    const perBackend = (labels: Record<string, string>): number => ['b1', 'b2', 'b3'].reduce((n, backend) => n + (sample(text, 'githa_backend_requests_total', { ...labels, backend }) ?? 0), 0);
    expect(perBackend({ transport: 'http', service: 'git-receive-pack', outcome: 'committed' })).toBe(1);
    expect(perBackend({ transport: 'ssh', service: 'git-upload-pack', outcome: 'ok' })).toBe(1);
    expect(perBackend({ transport: 'git', service: 'git-upload-pack', outcome: 'ok' })).toBe(1);
    expect(text).not.toMatch(/^githa_backend_requests_total\{backend="other"/m);
    expect(sample(text, 'githa_redis_up')).toBe(1);
    expect(sample(text, 'githa_pushes_quorum_missed_total')).toBe(0);
    expect(sample(text, 'githa_catchup_failures_total', { reason: 'target-missing' })).toBe(0);
    expect(repositoriesTotal(text)).toBe(1);
    expect(sample(text, 'githa_replication_backlog')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'githa_drifted_copies')).toBe(0);
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    // Never a repository name or a user in a label (nor anywhere else).
    expect(text).not.toContain('very-secret-name');
    expect(text).not.toContain('metrics/');
    expect(text).not.toContain('tester');

    // One log line per request, on every transport, with what an operator looks for.
    const requests = githa.logLines().filter((l) => l.msg === 'request');
    for (const frontend of ['http', 'ssh', 'git']) expect(requests.some((l) => l.frontend === frontend)).toBe(true);
    for (const line of requests) {
      expect(line.req ?? line.conn).toBeTruthy();
      for (const field of ['repo', 'service', 'backend', 'user', 'outcome', 'bytes', 'ms']) expect(line, `${field} in ${JSON.stringify(line)}`).toHaveProperty(field);
    }

    // A second repository appears; scrapes keep reading the cached snapshot: no ZSCAN, same gauge.
    await cluster().createRepository('metrics/second.git');
    await git.push(work, githa.url('metrics/second'), ['main']);
    const before = await zscanCalls(cluster().redis.cli.bind(cluster().redis));
    let last = '';
    for (let i = 0; i < 20; i++) last = await scrape(githa.adminUrl);
    expect(await zscanCalls(cluster().redis.cli.bind(cluster().redis))).toBe(before);
    expect(repositoriesTotal(last)).toBe(1);
    expect(sample(last, 'githa_requests_total', { transport: 'http', service: 'git-receive-pack', outcome: 'committed' })).toBe(2);
  });

  it('reports Redis unreachable (githa_redis_up 0) while Redis does not answer, and 1 again after', async () => {
    const githa = await startGitha(cluster(), { config: { redis: { url: cluster().redis.url, commandTimeoutMs: 500 } } });
    // Right after start githa may still be connecting (no offline queue: a PING then fails at once).
    const up = async (): Promise<true | undefined> => (sample(await scrape(githa.adminUrl), 'githa_redis_up') === 1 ? true : undefined);
    await waitFor('githa connected to Redis', up, 10_000, { intervalMs: 100 });
    // Paused, not stopped: the connection stays open and nothing answers, as with a hung Redis.
    cluster().redis.pause();
    try {
      expect(sample(await scrape(githa.adminUrl), 'githa_redis_up')).toBe(0);
    } finally {
      cluster().redis.resume();
    }
    await waitFor('githa_redis_up back to 1', up, 10_000, { intervalMs: 100 });
  });

  it('refreshes the repository gauges once the snapshot is older than metrics.statusRefreshMs', async () => {
    const githa = await startGitha(cluster(), { config: { metrics: { statusRefreshMs: 300 } } });
    const first = repositoriesTotal(await scrape(githa.adminUrl));
    const git = GitClient.forCluster(cluster());
    await cluster().createRepository('metrics/third.git');
    const work = await git.init('third');
    await git.commit(work, { 'b.txt': 'two\n' }, 'first');
    await git.push(work, githa.url('metrics/third'), ['main']);
    // Stale-while-revalidate: the scrape after the interval starts a refresh, a later one shows it.
    const now = await waitFor('the repository gauge to change', async () => {
      const n = repositoriesTotal(await scrape(githa.adminUrl));
      return n !== first ? n : undefined;
    }, 10_000, { intervalMs: 100 });
    expect(now).toBe(first + 1);
  });
});
