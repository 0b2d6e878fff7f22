/**
 * The write figures, all with commits made beforehand (commits.ts), so only
 * `git push` (smart HTTP) is timed:
 *
 * F3  one small commit, pushed directly to backend b1, through githa with
 *     writeQuorum 1 and through githa with writeQuorum 2, interleaved.
 * F4  pushes per second to one repository: W clients, each pushing its own
 *     branch commit after commit, directly to b1, then through two githa
 *     processes (half the clients each); githa serialises them with the
 *     repository's write lock (docs/architecture.md "A push (receive-pack)" 2).
 * F6  replication lag: after each push through githa (writeQuorum 1), the
 *     time until every backend has the commit on disk (loose ref or
 *     packed-refs, polled every 5 ms).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeChains } from './commits.js';
import type { BenchEnv, BenchOptions, FigureOutput } from './env.js';
import { fmt, fmtMs, fmtRatio, pairedRatio, percentile, type FigureRow } from './stats.js';

const push = (env: BenchEnv, local: string, url: string, sha: string, branch = 'main'): Promise<number> =>
  env.timeGit(['--git-dir', local, 'push', '-q', url, `${sha}:refs/heads/${branch}`]);

export async function pushLatency(env: BenchEnv, opts: BenchOptions): Promise<FigureOutput> {
  const n = opts.quick ? 6 : Math.max(10, opts.runs * 4);
  const local = join(env.work, 'f3-local.git');
  const { root, chains } = await makeChains(local, [{ name: 'main', count: n }]);
  const commits = chains.get('main')!;
  const b1 = env.backend(0);
  await b1.createRepository('f3-direct');
  await env.cluster.createRepository('f3-q1');
  await env.cluster.createRepository('f3-q2');
  const urls = { direct: b1.url('http', 'f3-direct'), q1: env.githa.a.url('f3-q1'), q2: env.githa.c.url('f3-q2') };
  for (const url of Object.values(urls)) await push(env, local, url, root); // warm-up: adoption, the branch
  opts.out(`F3: ${n} pushes of one small commit each, interleaved direct / quorum 1 / quorum 2`);
  const t = { direct: [] as number[], q1: [] as number[], q2: [] as number[] };
  for (const sha of commits) {
    t.direct.push(await push(env, local, urls.direct, sha));
    t.q1.push(await push(env, local, urls.q1, sha));
    t.q2.push(await push(env, local, urls.q2, sha));
  }
  const q1 = pairedRatio(t.direct, t.q1);
  const q2 = pairedRatio(t.direct, t.q2);
  const rows: FigureRow[] = [
    { figure: 'F3 q=1', measured: `push 1 commit: direct ${fmtMs(q1.baseline)}, githa writeQuorum 1 ${fmtMs(q1.subject)} (median of ${n})`, result: `${fmtRatio(q1)} ×`, goal: '≤ 1.3', met: q1.ratio <= 1.3 },
    { figure: 'F3 q=2', measured: `push 1 commit: direct ${fmtMs(q2.baseline)}, githa writeQuorum 2 ${fmtMs(q2.subject)} (median of ${n})`, result: `${fmtRatio(q2)} ×`, goal: '≤ 2.0', met: q2.ratio <= 2.0 },
  ];
  return { rows, data: { F3: { samplesMs: t, q1, q2 } } };
}

export async function pushThroughput(env: BenchEnv, opts: BenchOptions): Promise<FigureOutput> {
  const workers = opts.quick ? 4 : 8;
  const perRound = opts.quick ? 5 : 10;
  const rounds = opts.quick ? 1 : 2;
  const local = join(env.work, 'f4-local.git');
  const names = Array.from({ length: workers }, (_, i) => `w${i}`);
  const { root, chains } = await makeChains(
    local,
    names.map((name) => ({ name, count: perRound * rounds })),
  );
  const b1 = env.backend(0);
  await b1.createRepository('f4-direct');
  await env.cluster.createRepository('f4');
  const githas = [env.githa.a, env.githa.b];
  const direct = b1.url('http', 'f4-direct');
  await push(env, local, direct, root);
  await push(env, local, githas[0]!.url('f4'), root);
  await push(env, local, githas[1]!.url('f4'), root, 'warm');
  opts.out(`F4: ${workers} clients × ${perRound} pushes, each to its own branch of one repository, ${rounds} round(s) direct / through 2 githas`);
  const rate = { direct: [] as number[], githa: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    for (const side of ['direct', 'githa'] as const) {
      const t0 = performance.now();
      await Promise.all(
        names.map(async (name, w) => {
          const url = side === 'direct' ? direct : githas[w % 2]!.url('f4');
          for (const sha of chains.get(name)!.slice(r * perRound, (r + 1) * perRound)) await push(env, local, url, sha, name);
        }),
      );
      rate[side].push((workers * perRound) / ((performance.now() - t0) / 1000));
    }
  }
  const ratio = pairedRatio(rate.direct, rate.githa);
  return {
    rows: [
      {
        figure: 'F4',
        measured: `${workers} concurrent pushers, one repository: direct ${fmt(ratio.baseline, 1)} pushes/s, 2 githas (writeQuorum 1) ${fmt(ratio.subject, 1)} pushes/s`,
        result: `${fmtRatio(ratio)} ×`,
        goal: '≥ 0.8',
        met: ratio.ratio >= 0.8,
      },
    ],
    data: { F4: { workers, perRound, rounds, pushesPerSecond: rate, ratio } },
  };
}

/** The tip of refs/heads/main in a bare repository on disk: loose ref, then packed-refs. */
function tipOnDisk(gitDir: string): string | undefined {
  try {
    const loose = readFileSync(join(gitDir, 'refs/heads/main'), 'utf8').trim();
    if (/^[0-9a-f]{40,64}$/.test(loose)) return loose;
  } catch {
    // no loose ref
  }
  try {
    for (const line of readFileSync(join(gitDir, 'packed-refs'), 'utf8').split('\n')) {
      if (line.endsWith(' refs/heads/main')) return line.slice(0, line.indexOf(' '));
    }
  } catch {
    // no packed-refs
  }
  return undefined;
}

export async function replicationLag(env: BenchEnv, opts: BenchOptions): Promise<FigureOutput> {
  const pushes = opts.quick ? 15 : 100;
  const local = join(env.work, 'f6-local.git');
  const { root, chains } = await makeChains(local, [{ name: 'main', count: pushes }]);
  await env.cluster.createRepository('f6');
  const url = env.githa.a.url('f6');
  const dirs = env.cluster.backends.map((b) => b.repoPath('f6'));
  const onAll = async (sha: string, timeoutMs: number): Promise<boolean> => {
    const until = performance.now() + timeoutMs;
    while (dirs.some((d) => tipOnDisk(d) !== sha)) {
      if (performance.now() > until) return false;
      await sleep(5);
    }
    return true;
  };
  await push(env, local, url, root);
  await onAll(root, 10_000);
  opts.out(`F6: ${pushes} pushes through githa (writeQuorum 1 of 3), lag until every backend has the commit`);
  const lags: number[] = [];
  const acks: number[] = [];
  let timeouts = 0;
  for (const sha of chains.get('main')!) {
    acks.push(await push(env, local, url, sha));
    const acked = performance.now();
    if (await onAll(sha, 10_000)) lags.push(performance.now() - acked);
    else timeouts++;
  }
  const p99 = percentile(lags, 99);
  return {
    rows: [
      {
        figure: 'F6',
        measured: `lag push ack → on all 3 backends: p50 ${fmtMs(percentile(lags, 50))}, p99 ${fmtMs(p99)}, max ${fmtMs(Math.max(...lags))} (n=${lags.length}${timeouts ? `, ${timeouts} over 10 s` : ''}); push p50 ${fmtMs(percentile(acks, 50))}`,
        result: `p99 ${fmtMs(p99)}`,
        goal: 'p99 < 1 s',
        met: timeouts === 0 && p99 < 1000,
      },
    ],
    data: { F6: { lagsMs: lags, acksMs: acks, timeouts } },
  };
}
