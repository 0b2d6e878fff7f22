/**
 * F2: latency of the small reads every CI system makes all day, on the
 * many-refs repository (5,000 tags): `git ls-remote` and a no-op `git fetch`
 * (everything already present: ls-refs and nothing more), protocol v2 over
 * smart HTTP, at concurrency 1 and 16. Each of the 1 or 16 workers alternates
 * direct / githa command by command (half of them starting with each), so
 * both sides always run under the same load; each sample is one git
 * command's wall time (process start included, the same on both sides).
 * Figure: p50 through githa − p50 direct.
 *
 * githa spreads reads over its three backends; so does the direct side
 * (sample i goes to backend i mod 3), or at concurrency 16 githa would be
 * compared with one lighttpd doing the work of three.
 */
import { join } from 'node:path';
import type { BenchEnv, BenchOptions, FigureOutput } from './env.js';
import { fmtMs, percentile, type FigureRow } from './stats.js';

const GOAL_MS = 3;

type Side = 'direct' | 'githa' | 'floor';

export async function latencyFigures(env: BenchEnv, opts: BenchOptions, repo: string): Promise<FigureOutput> {
  const g = env.githa.a;
  const b1 = env.backend(0);
  const backends = env.cluster.backends;
  let turn = 0;
  const nextDirect = (): number => turn++ % backends.length;
  const local = join(env.work, 'fetcher.git');
  // The fetching repository: a copy with remote-tracking refs and tags of both remotes, so each fetch is a no-op.
  await env.git(['clone', '-q', '--bare', b1.url('http', repo), local]);
  for (const b of backends) await env.git(['--git-dir', local, 'remote', 'add', `direct-${b.id}`, b.url('http', repo)]);
  await env.git(['--git-dir', local, 'remote', 'add', 'githa', g.url(repo)]);
  await env.git(['--git-dir', local, 'remote', 'add', 'floor', env.floor.url('http', repo)]);
  const cfg = ['-c', 'protocol.version=2', '-c', 'gc.auto=0', '-c', 'maintenance.auto=0'];
  // 'floor': a minimal Node HTTP proxy in front of b1 (floor-proxy.ts), at concurrency 1 only (it has one backend).
  const ops: Record<string, (side: Side) => string[]> = {
    'ls-remote': (side) => [...cfg, 'ls-remote', side === 'direct' ? backends[nextDirect()]!.url('http', repo) : side === 'githa' ? g.url(repo) : env.floor.url('http', repo)],
    // --no-write-fetch-head: concurrent fetches into one repository would otherwise race on FETCH_HEAD.
    'no-op fetch': (side) => [...cfg, '--git-dir', local, 'fetch', '-q', '--no-write-fetch-head', side === 'direct' ? `direct-${backends[nextDirect()]!.id}` : side],
  };
  for (let i = 0; i <= backends.length; i++) await env.git(ops['no-op fetch']!(i < backends.length ? 'direct' : 'githa'));
  await env.git(ops['no-op fetch']!('floor'));

  const rows: FigureRow[] = [];
  const data: Record<string, unknown> = {};
  for (const [name, args] of Object.entries(ops)) {
    for (const concurrency of [1, 16]) {
      // Pairs (one direct and one githa command) per worker.
      const pairs = concurrency === 1 ? (opts.quick ? 10 : 100) : opts.quick ? 2 : 25;
      opts.out(`F2: ${name}, concurrency ${concurrency}: ${concurrency * pairs} samples per side`);
      const samples: Record<Side, number[]> = { direct: [], githa: [], floor: [] };
      await env.git(args('githa')); // warm-up
      const sides: Side[] = concurrency === 1 ? ['direct', 'githa', 'floor'] : ['direct', 'githa'];
      await Promise.all(
        Array.from({ length: concurrency }, async (_, w) => {
          const order = w % 2 === 0 ? sides : [...sides].reverse();
          for (let i = 0; i < pairs; i++) for (const side of order) samples[side].push(await env.timeGit(args(side)));
        }),
      );
      const p = (side: Side, q: number): number => percentile(samples[side], q);
      const delta = p('githa', 50) - p('direct', 50);
      const floor = samples.floor.length > 0 ? `; a minimal Node HTTP proxy: p50 ${fmtMs(p('floor', 50))} (${fmtMs(p('floor', 50) - p('direct', 50))} over direct)` : '';
      rows.push({
        figure: `F2 ${name} c=${concurrency}`,
        measured: `p50 direct ${fmtMs(p('direct', 50))}, githa ${fmtMs(p('githa', 50))}; p99 direct ${fmtMs(p('direct', 99))}, githa ${fmtMs(p('githa', 99))} (n=${samples.githa.length})${floor}`,
        result: `p50 ${delta >= 0 ? '+' : ''}${fmtMs(delta)}`,
        goal: `p50 ≤ direct + ${GOAL_MS} ms`,
        met: delta <= GOAL_MS,
      });
      data[`${name} c=${concurrency}`] = {
        p50: { direct: p('direct', 50), githa: p('githa', 50), ...(samples.floor.length > 0 ? { floor: p('floor', 50) } : {}) },
        p99: { direct: p('direct', 99), githa: p('githa', 99) },
        samples,
      };
    }
  }
  return { rows, data };
}
