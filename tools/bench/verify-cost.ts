/**
 * What one verifier sweep costs (issue 16 item 6; docs/config.md "verify"):
 * a dev cluster of three backends holding `repos` identical repositories
 * (a few branches and a tag each), adopted by githa; then one sweep of the
 * real Verifier (src/cluster/verifier.ts, `sweepOnce`) with Redis behind the
 * round-trip counter (redis-counter.ts). Counted: Redis round trips (turns,
 * by command), backend ref listings (the verifier's own count, and the HTTP
 * requests in the backends' access logs), and the sweep's wall time at
 * `perSecond` listings per second.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { Verifier, type SweepStats } from '../../src/cluster/verifier.js';
import { buildConfig } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { startDevCluster } from '../../src/demo/cluster.js';
import { minimalEnv, run } from '../../src/demo/process.js';
import { buildCluster } from '../../src/githa.js';
import { createLogger } from '../../src/log.js';
import { redisReady } from '../../src/state/redis.js';
import { describeTurn, RedisRoundTripCounter } from './redis-counter.js';

export interface VerifyCostOptions {
  repos: number;
  /** verify.perSecond for the sweep (default: githa's default). */
  perSecond?: number;
  /** verify.concurrency for the sweep (default: githa's default). */
  concurrency?: number;
  out: (line: string) => void;
}

export interface VerifyCost {
  repos: number;
  backends: number;
  perSecond: number;
  sweep: SweepStats;
  redisRoundTrips: number;
  /** Round trips by their commands, e.g. "EVALSHA" → 3000. */
  byCommand: Record<string, number>;
  /** HTTP requests the backends' web servers logged during the sweep. */
  backendHttpRequests: number;
}

const ENV = minimalEnv({ GIT_CONFIG_NOSYSTEM: '1', HOME: '/nonexistent', GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@githa.invalid', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@githa.invalid' });
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/** A template repository: main with three commits, two more branches, a tag. */
async function template(gitDir: string): Promise<void> {
  const git = (args: string[]): Promise<string> => run('git', ['--git-dir', gitDir, ...args], { env: ENV });
  await git(['hash-object', '-t', 'tree', '-w', '/dev/null']);
  let tip = '';
  for (let i = 1; i <= 3; i++) tip = (await git(['commit-tree', EMPTY_TREE, ...(tip ? ['-p', tip] : []), '-m', `c${i}`])).trim();
  for (const ref of ['refs/heads/main', 'refs/heads/dev', 'refs/heads/release', 'refs/tags/v1']) await git(['update-ref', ref, tip]);
}

const countLines = (file: string): number => readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(' /git/')).length;

export async function measureVerifyCost(o: VerifyCostOptions): Promise<VerifyCost> {
  const perSecond = o.perSecond ?? DEFAULTS.verify.perSecond;
  const dir = mkdtempSync(join(tmpdir(), 'githa-verify-cost-'));
  const cluster = await startDevCluster({ backends: 3, dir });
  const counter = new RedisRoundTripCounter({ host: '127.0.0.1', port: cluster.redis.port });
  try {
    const names = Array.from({ length: o.repos }, (_, i) => `vc/r${i + 1}.git`);
    await cluster.createRepository('tmpl.git');
    const tmpl = cluster.backends[0]!.repoPath('tmpl.git');
    await template(tmpl);
    for (const b of cluster.backends) for (const name of names) cpSync(tmpl, b.repoPath(name), { recursive: true });
    o.out(`verify-cost: ${o.repos} repositories × ${cluster.backends.length} backends created (4 refs each)`);
    const port = await counter.start();
    const config = buildConfig(
      {
        redis: { url: `redis://127.0.0.1:${port}` },
        backends: cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl })),
        verify: { intervalMs: DEFAULTS.verify.intervalMs, perSecond, concurrency: o.concurrency ?? DEFAULTS.verify.concurrency },
        log: { level: 'warn' },
      },
      {},
    );
    const parts = buildCluster(config, createLogger('warn'));
    try {
      if (!(await redisReady(parts.redis, 5_000))) throw new Error('Redis did not answer');
      // Adoption (the first read of each repository records its copies), eight at a time.
      for (let i = 0; i < names.length; i += 8) await Promise.all(names.slice(i, i + 8).map((n) => parts.cluster.routeRead(n)));
      o.out(`verify-cost: adopted; one sweep at verify.perSecond ${perSecond}`);
      const logs = cluster.backends.map((b) => b.logs.http);
      await sleep(1_000); // the adoption's access-log lines are written a moment after its answers
      const before = logs.reduce((n, f) => n + countLines(f), 0);
      const mark = counter.mark();
      const sweep = await new Verifier(parts.cluster.ctx).sweepOnce();
      const turns = counter.since(mark);
      const byCommand: Record<string, number> = {};
      for (const t of turns) byCommand[describeTurn(t)] = (byCommand[describeTurn(t)] ?? 0) + 1;
      await sleep(1_000); // the web servers' access logs are written a moment after the answer
      const backendHttpRequests = logs.reduce((n, f) => n + countLines(f), 0) - before;
      return { repos: o.repos, backends: cluster.backends.length, perSecond, sweep, redisRoundTrips: turns.length, byCommand, backendHttpRequests };
    } finally {
      await parts.close();
    }
  } finally {
    await counter.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

export function formatVerifyCost(c: VerifyCost): string[] {
  const per1000 = (n: number): string => ((n * 1000) / c.repos).toFixed(0);
  const listingsPerSecond = c.sweep.listings / (c.sweep.ms / 1000);
  return [
    `one verifier sweep: ${c.repos} repositories × ${c.backends} backends, verify.perSecond ${c.perSecond} (paced at ${c.sweep.listingsPerSecond.toFixed(1)}/s)`,
    `  repositories verified:      ${c.sweep.verified} of ${c.sweep.repositories}`,
    `  backend ref listings:       ${c.sweep.listings} (${per1000(c.sweep.listings)} per 1,000 repositories); backend HTTP requests ${c.backendHttpRequests}`,
    `  Redis round trips:          ${c.redisRoundTrips} (${per1000(c.redisRoundTrips)} per 1,000 repositories; ${(c.redisRoundTrips / Math.max(1, c.sweep.verified)).toFixed(1)} per repository)`,
    `    by command:               ${Object.entries(c.byCommand).sort(([, a], [, b]) => b - a).map(([k, n]) => `${k} ${n}`).join(', ')}`,
    `  wall time:                  ${(c.sweep.ms / 1000).toFixed(1)} s (${listingsPerSecond.toFixed(1)} listings/s; ${((c.sweep.ms * 1000) / c.repos / 1000).toFixed(0)} s per 1,000 repositories)`,
  ];
}
