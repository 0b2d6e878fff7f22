/**
 * REB (docs/performance.md "Rebalancing onto new backends"): how long
 * `githa rebalance` takes to move repositories onto two new, empty backends,
 * against copying the same (repository, target) pairs by hand with `git
 * clone --mirror` from a holder and `git push --mirror` to the target (into a
 * bare repository made with `git init --bare`): what an operator would do
 * without githa, before switching anything. A dev cluster of five backends of
 * its own; `n` repositories (three commits, a few KiB each, plus one of
 * `bigMb` MB of random blobs) recorded on b1-b3 with that assignment
 * (factor 3). githa's moves run in this process (src/cluster/move.ts, the
 * same code as the CLI), one after another; the baseline runs the same pairs
 * one after another, each into a fresh name.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Mover } from '../../src/cluster/move.js';
import { planInput, planRebalance, runMoves } from '../../src/cluster/rebalance.js';
import { buildConfig } from '../../src/config/load.js';
import { startDevCluster, type DevCluster } from '../../src/demo/cluster.js';
import { minimalEnv, run } from '../../src/demo/process.js';
import { buildCluster } from '../../src/githa.js';
import { createLogger } from '../../src/log.js';
import { MoveStore } from '../../src/state/move-store.js';
import { redisReady } from '../../src/state/redis.js';
import type { BenchOptions, FigureOutput } from './env.js';

const ENV = minimalEnv({ GIT_CONFIG_NOSYSTEM: '1', HOME: '/nonexistent', GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@githa.invalid', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@githa.invalid' });
const git = (args: string[], cwd?: string): Promise<string> => run('git', args, { env: ENV, timeoutMs: 600_000, ...(cwd ? { cwd } : {}) });

async function template(dir: string, name: string, files: Record<string, Buffer | string>[]): Promise<string> {
  const work = join(dir, `${name}-work`);
  const bare = join(dir, `${name}.git`);
  mkdirSync(work, { recursive: true });
  await git(['init', '-q', '--initial-branch=main'], work);
  for (const [i, f] of files.entries()) {
    for (const [p, content] of Object.entries(f)) writeFileSync(join(work, p), content);
    await git(['add', '-A'], work);
    await git(['commit', '-q', '-m', `c${i + 1}`], work);
  }
  await git(['clone', '-q', '--bare', work, bare]);
  await git(['--git-dir', bare, 'config', 'http.receivepack', 'true']);
  await git(['--git-dir', bare, 'repack', '-a', '-d', '-q']);
  return bare;
}

export interface RebalanceTime {
  repos: number;
  moves: number;
  bytes: number;
  githaMs: number;
  mirrorMs: number;
}

export async function measureRebalance(o: { repos: number; bigMb: number; out: (line: string) => void }): Promise<RebalanceTime> {
  const dir = mkdtempSync(join(tmpdir(), 'githa-rebalance-'));
  const cluster: DevCluster = await startDevCluster({ backends: 5, dir });
  const redis = new Redis(cluster.redis.url, { maxRetriesPerRequest: 1 });
  const log = createLogger('warn');
  try {
    const small = await template(dir, 'small', [1, 2, 3].map((i) => ({ 'README.md': `small ${i}\n`, [`f${i}.txt`]: randomBytes(1024).toString('hex') })));
    const big = await template(dir, 'big', [{ 'README.md': 'big\n' }, Object.fromEntries(Array.from({ length: Math.ceil(o.bigMb / 10) }, (_, i) => [`b${i}.bin`, randomBytes(Math.min(10, o.bigMb - i * 10) * 1024 * 1024)]))]);
    const names = [...Array.from({ length: o.repos - 1 }, (_, i) => `rb/r${i + 1}.git`), 'rb/big.git'];
    for (const id of ['b1', 'b2', 'b3']) for (const n of names) cpSync(n === 'rb/big.git' ? big : small, cluster.backend(id).repoPath(n), { recursive: true });
    const config = buildConfig(
      {
        listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0' },
        redis: { url: cluster.redis.url },
        ssh: { backendKey: cluster.ssh.clientKeyPath, backendKnownHosts: cluster.ssh.knownHostsPath },
        backends: cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl, ssh: b.sshUrl, admin: true })),
        replication: { factor: 3 },
        log: { level: 'warn' },
      },
      {},
    );
    const parts = buildCluster(config, log);
    try {
      if (!(await redisReady(parts.redis, 5_000))) throw new Error('Redis did not answer');
      // Recorded on b1-b3 (adoption by a first read), assigned there: what placement records for factor 3 of 3.
      for (const n of names) {
        await redis.hset(`githa:repo:{${n}}:assigned`, 'b1', '1', 'b2', '1', 'b3', '1');
        await parts.cluster.routeRead(n);
      }
      const input = await planInput(parts.cluster.ctx, new Set());
      const plan = planRebalance(input.backends, input.repos);
      o.out(`rebalance: ${names.length} repositories (one of ${o.bigMb} MB) on b1-b3, ${plan.length} moves planned onto b4, b5`);

      // The baseline: the same pairs by hand, into fresh names (nothing recorded, nothing switched).
      const t0 = performance.now();
      for (const [i, m] of plan.entries()) {
        const mirror = join(dir, `mirror-${i}.git`);
        await git(['clone', '-q', '--mirror', `${cluster.backend(m.from).httpUrl}/${m.repo}`, mirror]);
        const target = cluster.backend(m.to).repoPath(`by-hand/${i}.git`);
        await git(['init', '-q', '--bare', target]);
        await git(['--git-dir', target, 'config', 'http.receivepack', 'true']);
        await git(['--git-dir', mirror, 'push', '-q', '--mirror', `${cluster.backend(m.to).httpUrl}/by-hand/${i}.git`]);
        rmSync(mirror, { recursive: true, force: true });
      }
      const mirrorMs = performance.now() - t0;

      const mover = new Mover(parts.cluster.ctx, new MoveStore(parts.state.scripts, config.pushLog.maxLength, parts.state.usage));
      const t1 = performance.now();
      const report = await runMoves(mover, plan, { by: 'bench', progress: () => {} });
      const githaMs = performance.now() - t1;
      if (report.failed.length > 0) throw new Error(`${report.failed.length} moves failed: ${report.failed[0]!.error}`);
      return { repos: names.length, moves: plan.length, bytes: report.bytes, githaMs, mirrorMs };
    } finally {
      await parts.close();
    }
  } finally {
    redis.disconnect();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** REB in the bench table. */
export async function rebalanceFigure(opts: BenchOptions): Promise<FigureOutput> {
  const t = await measureRebalance({ repos: opts.quick ? 10 : 30, bigMb: opts.quick ? 10 : 50, out: opts.out });
  const ratio = t.githaMs / t.mirrorMs;
  return {
    rows: [
      {
        figure: 'REB',
        measured: `githa rebalance: ${t.moves} moves of ${t.repos} repositories (${(t.bytes / 1e6).toFixed(1)} MB relayed) onto 2 new backends: githa ${(t.githaMs / 1000).toFixed(1)} s, clone --mirror + push --mirror ${(t.mirrorMs / 1000).toFixed(1)} s`,
        result: ratio.toFixed(2),
        goal: '(reference)',
        met: undefined,
      },
    ],
    data: { rebalance: t },
  };
}
