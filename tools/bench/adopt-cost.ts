/**
 * What adopting existing repositories costs (issue 22 item 5;
 * docs/performance.md "Adoption"): a dev cluster of three backends holding
 * `repos` tiny one-commit repositories (one template copied with cp -r),
 * unknown to Redis; then `Inventory.trackAll` (what `githa inventory --all`
 * runs) adopts them, one at a time (the code before issue 22) and
 * `concurrency` at a time, each on its own half of the repositories in the
 * same run, so the ratio holds on a shared machine. Also: the Redis memory
 * of each adopted repository's push log (`MEMORY USAGE`).
 *
 * With `admin`: every backend has its admin account (SSH), the repositories
 * are hard-linked copies of one minimal template (the quickest way to make
 * 10,000 × 3), and the whole of `githa inventory --all` is timed once
 * (Inventory.survey, then trackAll: the copies listed in batches by
 * `githa-admin refs`, docs/architecture.md "Adoption in batches").
 */
import { cpSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Redis } from 'ioredis';
import { Inventory, type InventoryReport, TRACK_CONCURRENCY } from '../../src/cluster/inventory.js';
import { buildConfig } from '../../src/config/load.js';
import { startDevCluster } from '../../src/demo/cluster.js';
import { minimalEnv, run } from '../../src/demo/process.js';
import { buildCluster } from '../../src/githa.js';
import { createLogger } from '../../src/log.js';
import { redisReady } from '../../src/state/redis.js';
import { Tombstones } from '../../src/state/tombstones.js';

export interface AdoptCostOptions {
  repos: number;
  concurrency?: number;
  out: (line: string) => void;
}

export interface AdoptCost {
  repos: number;
  backends: number;
  concurrency: number;
  /** Adoption of repos/2, one at a time and `concurrency` at a time: ms. */
  sequentialMs: number;
  concurrentMs: number;
  recovered: number;
  /** Mean MEMORY USAGE of an adopted repository's push log, bytes. */
  logBytes: number;
}

const ENV = minimalEnv({ GIT_CONFIG_NOSYSTEM: '1', HOME: '/nonexistent', GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@githa.invalid', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@githa.invalid' });
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

const report = (names: readonly string[], backends: string[]): InventoryReport => ({
  at: Date.now(),
  rows: names.map((repo) => ({ repo, class: 'untracked', copies: backends, missing: [], unknown: [] })),
  counts: { tracked: 0, missing: 0, untracked: names.length, ghost: 0, leftover: 0 },
  backends: [],
  notListable: [],
});

export interface AdminAdoptCost {
  repos: number;
  backends: number;
  makeMs: number;
  /** `githa inventory --all`: the survey (three admin listings) and the adoption of every repository. */
  surveyMs: number;
  trackMs: number;
  recovered: number;
  other: number;
}

/** Every file below `dir`, relative, and every directory (parents first). */
function tree(dir: string): { dirs: string[]; files: string[] } {
  const dirs: string[] = [];
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        dirs.push(relative(dir, p));
        walk(p);
      } else files.push(relative(dir, p));
    }
  };
  walk(dir);
  return { dirs, files };
}

export async function measureAdminAdoptCost(o: { repos: number; out: (line: string) => void }): Promise<AdminAdoptCost> {
  const dir = mkdtempSync(join(tmpdir(), 'githa-adopt-cost-'));
  const cluster = await startDevCluster({ backends: 3, dir });
  try {
    const names = Array.from({ length: o.repos }, (_, i) => `ad${String(i).padStart(6, '0')}.git`);
    // One minimal bare repository (no hooks, no samples): HEAD, config, two objects, one ref.
    const tmpl = join(dir, 'tmpl.git');
    await run('git', ['init', '--bare', '--quiet', '--template=', '--initial-branch=main', tmpl], { env: ENV });
    await run('git', ['--git-dir', tmpl, 'hash-object', '-t', 'tree', '-w', '/dev/null'], { env: ENV });
    const tip = (await run('git', ['--git-dir', tmpl, 'commit-tree', EMPTY_TREE, '-m', 'one'], { env: ENV })).trim();
    await run('git', ['--git-dir', tmpl, 'update-ref', 'refs/heads/main', tip], { env: ENV });
    const { dirs, files } = tree(tmpl);
    const made = performance.now();
    for (const b of cluster.backends) {
      for (const name of names) {
        const to = b.repoPath(name);
        mkdirSync(to);
        for (const d of dirs) mkdirSync(join(to, d));
        for (const f of files) linkSync(join(tmpl, f), join(to, f));
      }
    }
    const makeMs = performance.now() - made;
    o.out(`adopt-cost: ${o.repos} one-commit repositories × ${cluster.backends.length} backends made in ${(makeMs / 1000).toFixed(1)} s (hard links to one template)`);
    const config = buildConfig(
      {
        redis: { url: cluster.redis.url },
        backends: cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl, ssh: b.sshUrl, admin: true })),
        ssh: { backendKey: cluster.ssh.clientKeyPath, backendKnownHosts: cluster.ssh.knownHostsPath },
        verify: { intervalMs: 0 },
        log: { level: 'error' },
      },
      {},
    );
    const parts = buildCluster(config, createLogger('error'));
    try {
      if (!(await redisReady(parts.redis, 5_000))) throw new Error('Redis did not answer');
      const inv = new Inventory(parts.cluster.ctx, new Tombstones(parts.redis, parts.state.keys), parts.cluster);
      let t = performance.now();
      const report = await inv.survey();
      const surveyMs = performance.now() - t;
      o.out(`adopt-cost: survey (${report.counts.untracked} untracked) in ${(surveyMs / 1000).toFixed(1)} s`);
      t = performance.now();
      const results = await inv.trackAll(report);
      const trackMs = performance.now() - t;
      const recovered = results.filter((r) => r.status === 'recovered').length;
      o.out(`adopt-cost: ${recovered} of ${results.length} adopted in ${(trackMs / 1000).toFixed(1)} s (the cluster is then stopped and its ${o.repos * 3} repositories removed)`);
      return { repos: o.repos, backends: cluster.backends.length, makeMs, surveyMs, trackMs, recovered, other: results.length - recovered };
    } finally {
      await parts.close();
    }
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

export function formatAdminAdoptCost(c: AdminAdoptCost): string[] {
  return [
    `adoption with admin accounts (githa inventory --all: survey + Inventory.trackAll, batched admin listings): ${c.repos} one-commit repositories × ${c.backends} backends`,
    `  survey ${(c.surveyMs / 1000).toFixed(1)} s + adoption ${(c.trackMs / 1000).toFixed(1)} s = ${((c.surveyMs + c.trackMs) / 1000).toFixed(1)} s; ${c.recovered} adopted, ${c.other} otherwise`,
  ];
}

export async function measureAdoptCost(o: AdoptCostOptions): Promise<AdoptCost> {
  const concurrency = o.concurrency ?? TRACK_CONCURRENCY;
  const dir = mkdtempSync(join(tmpdir(), 'githa-adopt-cost-'));
  const cluster = await startDevCluster({ backends: 3, dir });
  try {
    const names = Array.from({ length: o.repos }, (_, i) => `ad${String(i).padStart(6, '0')}.git`);
    await cluster.createRepository('tmpl.git');
    const tmpl = cluster.backends[0]!.repoPath('tmpl.git');
    await run('git', ['--git-dir', tmpl, 'hash-object', '-t', 'tree', '-w', '/dev/null'], { env: ENV });
    const tip = (await run('git', ['--git-dir', tmpl, 'commit-tree', EMPTY_TREE, '-m', 'one'], { env: ENV })).trim();
    await run('git', ['--git-dir', tmpl, 'update-ref', 'refs/heads/main', tip], { env: ENV });
    const made = performance.now();
    for (const b of cluster.backends) for (const name of names) cpSync(tmpl, b.repoPath(name), { recursive: true });
    o.out(`adopt-cost: ${o.repos} one-commit repositories × ${cluster.backends.length} backends made in ${((performance.now() - made) / 1000).toFixed(1)} s (cp -r of one template)`);
    const config = buildConfig(
      { redis: { url: cluster.redis.url }, backends: cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl })), verify: { intervalMs: 0 }, log: { level: 'warn' } },
      {},
    );
    const parts = buildCluster(config, createLogger('warn'));
    const redis = new Redis(cluster.redis.url, { maxRetriesPerRequest: 0 });
    try {
      if (!(await redisReady(parts.redis, 5_000))) throw new Error('Redis did not answer');
      const inv = new Inventory(parts.cluster.ctx, new Tombstones(parts.redis, parts.state.keys), parts.cluster);
      const ids = cluster.backends.map((b) => b.id);
      const half = Math.floor(names.length / 2);
      let t = performance.now();
      const a = await inv.trackAll(report(names.slice(0, half), ids), 1);
      const sequentialMs = performance.now() - t;
      o.out(`adopt-cost: ${half} adopted one at a time in ${(sequentialMs / 1000).toFixed(1)} s`);
      t = performance.now();
      const b = await inv.trackAll(report(names.slice(half), ids), concurrency);
      const concurrentMs = performance.now() - t;
      o.out(`adopt-cost: ${names.length - half} adopted ${concurrency} at a time in ${(concurrentMs / 1000).toFixed(1)} s`);
      const recovered = [...a, ...b].filter((r) => r.status === 'recovered').length;
      const sample = names.filter((_, i) => i % Math.max(1, Math.floor(names.length / 100)) === 0);
      let bytes = 0;
      for (const n of sample) bytes += Number(await redis.call('MEMORY', 'USAGE', parts.state.keys.log(n), 'SAMPLES', '0'));
      return { repos: o.repos, backends: ids.length, concurrency, sequentialMs, concurrentMs, recovered, logBytes: bytes / sample.length };
    } finally {
      redis.disconnect();
      await parts.close();
    }
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

export function formatAdoptCost(c: AdoptCost): string[] {
  const half = Math.floor(c.repos / 2);
  const per10k = (ms: number, n: number): string => ((ms / n) * 10).toFixed(0);
  return [
    `adoption (githa inventory --all, Inventory.trackAll): ${c.repos} one-commit repositories × ${c.backends} backends; ${c.recovered} adopted`,
    `  one at a time:       ${(c.sequentialMs / 1000).toFixed(1)} s for ${half} (${per10k(c.sequentialMs, half)} s per 10,000)`,
    `  ${String(c.concurrency).padEnd(2)} at a time:      ${(c.concurrentMs / 1000).toFixed(1)} s for ${c.repos - half} (${per10k(c.concurrentMs, c.repos - half)} s per 10,000); ratio ${(c.concurrentMs / (c.repos - half) / (c.sequentialMs / half)).toFixed(2)}`,
    `  push log per repository (MEMORY USAGE, one entry): ${c.logBytes.toFixed(0)} bytes`,
  ];
}
