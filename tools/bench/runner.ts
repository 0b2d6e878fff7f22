/**
 * The benchmark suite (issue 9): generates (or takes from bench/.cache/) its
 * repositories, starts the dev cluster and four githa processes, runs each
 * selected figure, and prints one table plus bench/results.json. A figure that
 * fails is reported as failed and the others still run.
 *
 * Figures: F1 F1s (clone.ts), F2 (latency.ts), F3 F4 F6 (push.ts),
 * F5 (fill.ts), F7 (concurrent.ts), RT Redis round trips (roundtrips.ts),
 * IDLE an idle githa's CPU and Redis commands at 10k-1M repositories (idle.ts, a cluster of its own).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { cloneFigures } from './clone.js';
import { concurrentFigure } from './concurrent.js';
import { startBenchEnv, type BenchEnv, type BenchOptions, type FigureOutput } from './env.js';
import { fillFigure } from './fill.js';
import { idleFigure } from './idle.js';
import { latencyFigures } from './latency.js';
import { pushLatency, pushThroughput, replicationLag } from './push.js';
import { bigRepo, install, manyRefsRepo, type CachedRepo } from './repos.js';
import { rebalanceFigure } from './rebalance.js';
import { roundTripFigure } from './roundtrips.js';
import { markdownTable, type FigureRow } from './stats.js';
import { REPO_ROOT } from '../support/paths.js';

export const FIGURES = ['F1', 'F1s', 'F2', 'F3', 'F4', 'F5', 'F6', 'F7', 'RT', 'IDLE'] as const;

/** bench/ at the top of the repository (results, cache; the sources are in tools/bench/). */
export const BENCH_DIR = join(REPO_ROOT, 'bench');

export interface BenchResult {
  rows: FigureRow[];
  json: Record<string, unknown>;
}

function machine(): Record<string, unknown> {
  const version = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0] ?? '';
    } catch {
      return 'unknown';
    }
  };
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    git: version('git', ['--version']),
    redis: version('redis-server', ['--version']),
    lighttpd: version('lighttpd', ['-v']),
  };
}

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const wanted = (f: string): boolean => opts.only.size === 0 || opts.only.has(f);
  const started = performance.now();
  const info = machine();
  opts.out(`githa benchmarks${opts.quick ? ' (--quick)' : ''}: ${info.cores} × ${String(info.cpu)}, load ${(info.loadAverageAtStart as number[]).join(' ')}`);

  let big: CachedRepo | undefined;
  let refs: CachedRepo | undefined;
  if (['F1', 'F1s', 'F5', 'F7'].some(wanted)) {
    opts.out(`repository: synthetic ${opts.sizeMb} MB (cache ${opts.cacheDir})…`);
    big = await bigRepo(opts.cacheDir, opts.sizeMb);
    opts.out(`  ${big.generated ? 'generated' : 'cached'}: ${(big.bytes / 1e6).toFixed(1)} MB packed`);
  }
  if (wanted('F2')) {
    refs = await manyRefsRepo(opts.cacheDir);
    opts.out(`repository: 5,000 tags ${refs.generated ? 'generated' : 'cached'}`);
  }
  const sizeLabel = big ? `${(big.bytes / 1e6).toFixed(0)} MB` : '';

  const rows: FigureRow[] = [];
  const data: Record<string, unknown> = {};
  if (wanted('IDLE')) {
    // A cluster of its own (millions of records, one githa alone): before the four-githa environment starts.
    const t0 = performance.now();
    try {
      const out = await idleFigure(opts);
      rows.push(...out.rows);
      Object.assign(data, out.data);
    } catch (err) {
      const message = (err as Error)?.message ?? String(err);
      opts.out(`IDLE FAILED: ${message}`);
      rows.push({ figure: 'IDLE', measured: 'failed', result: `FAILED: ${message.split('\n')[0]!.slice(0, 200)}`, goal: '', met: undefined });
    }
    opts.out(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  const envFigures = FIGURES.filter((f) => f !== 'IDLE');
  const env: BenchEnv | undefined = envFigures.some(wanted) ? await startBenchEnv(opts) : undefined;
  if (env) {
  try {
    opts.out(`cluster: ${env.cluster.dir} (3 backends, 4 githa processes)`);
    if (big) {
      for (const b of env.cluster.backends) await install(big.path, b.repoPath('big'));
      if (wanted('F5')) await install(big.path, env.backend(0).repoPath('fill'));
    }
    if (refs) for (const b of env.cluster.backends) await install(refs.path, b.repoPath('refs'));

    const figure = async (ids: string[], fn: () => Promise<FigureOutput>): Promise<void> => {
      const t0 = performance.now();
      try {
        const out = await fn();
        rows.push(...out.rows);
        Object.assign(data, out.data);
      } catch (err) {
        const message = (err as Error)?.message ?? String(err);
        opts.out(`${ids.join('/')} FAILED: ${message}`);
        for (const id of ids) rows.push({ figure: id, measured: 'failed', result: `FAILED: ${message.split('\n')[0]!.slice(0, 200)}`, goal: '', met: undefined });
      }
      opts.out(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    };
    // Lightest first; F7 (50 concurrent fetches) last.
    if (wanted('F2')) await figure(['F2'], () => latencyFigures(env, opts, 'refs.git'));
    if (wanted('F3')) await figure(['F3'], () => pushLatency(env, opts));
    if (wanted('F4')) await figure(['F4'], () => pushThroughput(env, opts));
    if (wanted('F6')) await figure(['F6'], () => replicationLag(env, opts));
    if (wanted('RT')) await figure(['RT'], () => roundTripFigure(env, opts));
    if (wanted('F1') || wanted('F1s')) await figure(['F1', 'F1s'], () => cloneFigures(env, opts, 'big.git', sizeLabel, { http: wanted('F1'), ssh: wanted('F1s') }));
    if (wanted('F5')) await figure(['F5'], () => fillFigure(env, opts, 'fill.git', sizeLabel));
    if (wanted('F7')) await figure(['F7'], () => concurrentFigure(env, opts, 'big.git', sizeLabel));
    // A dev cluster of its own (five backends).
    if (wanted('REB')) await figure(['REB'], () => rebalanceFigure(opts));
  } finally {
    await env.stop();
  }
  }

  const json = {
    date: new Date().toISOString(),
    quick: opts.quick,
    options: { runs: opts.runs, sizeMb: opts.sizeMb, only: [...opts.only] },
    machine: { ...info, loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100) },
    seconds: Math.round((performance.now() - started) / 1000),
    bigRepositoryBytes: big?.bytes,
    rows,
    data,
  };
  const file = join(BENCH_DIR, 'results.json');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  opts.out('');
  opts.out(markdownTable(rows));
  opts.out('');
  opts.out(`${json.seconds} s; load average at the end ${json.machine.loadAverageAtEnd.join(' ')}; raw data in ${file}`);
  return { rows, json };
}
