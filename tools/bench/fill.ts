/**
 * F5: filling an empty backend with the big repository. githa's way is the
 * catch-up relay (src/cluster/catch-up.ts copyRepository, what `githa sync R
 * --to B`, read-time catch-up and background replication run): one v2 fetch
 * from a leader streamed straight into one receive-pack on the new backend,
 * no disk, no git process on githa's side. The baseline is what an operator
 * would do by hand: `git clone --mirror` from the leader, then `git push
 * --mirror` to the new backend. Both over smart HTTP, from b1 to an empty
 * repository on b3 (re-created before each run), interleaved. The relay runs
 * in this process, with its own key prefix in Redis, so the serving githas
 * never see the repository.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { HttpBackendClient } from '../../src/backends/http.js';
import { copyRepository } from '../../src/cluster/catch-up.js';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { openState } from '../../src/state/state.js';
import type { BenchEnv, BenchOptions, FigureOutput } from './env.js';
import { fmt, fmtRatio, pairedRatio } from './stats.js';

export async function fillFigure(env: BenchEnv, opts: BenchOptions, repo: string, sizeLabel: string): Promise<FigureOutput> {
  const [source, , target] = env.cluster.backends;
  const redis = new Redis(env.cluster.redis.url, { maxRetriesPerRequest: 1 });
  const state = openState(redis, { prefix: 'githa-bench-f5:', logMax: 1000, locks: { leaseMs: 15_000, waitMs: 1_000 } });
  const timeoutMs = 30 * 60_000;
  const from = new HttpBackendClient({ id: source!.id, baseUrl: source!.httpUrl, timeoutMs });
  const to = new HttpBackendClient({ id: target!.id, baseUrl: target!.httpUrl, timeoutMs });
  const emptyTarget = async (): Promise<void> => {
    rmSync(target!.repoPath(repo), { recursive: true, force: true });
    await target!.createRepository(repo);
  };
  const mirror = join(env.work, 'f5-mirror.git');
  try {
    const refs = await from.listRefs(repo);
    if (!refs) throw new Error(`${repo} is missing on ${source!.id}`);
    const checksum = refsChecksum(refs);
    const relay = async (): Promise<number> => {
      await emptyTarget();
      const t0 = performance.now();
      const outcome = await copyRepository(state.pairs, { repo, source: from, target: to, checksum });
      if (outcome.status !== 'copied') throw new Error(`the relay did not copy ${repo}: ${JSON.stringify(outcome)}`);
      return (performance.now() - t0) / 1000;
    };
    const byHand = async (): Promise<number> => {
      await emptyTarget();
      rmSync(mirror, { recursive: true, force: true });
      const t0 = performance.now();
      await env.git(['clone', '-q', '--mirror', source!.url('http', repo), mirror], { timeoutMs });
      await env.git(['--git-dir', mirror, 'push', '-q', '--mirror', target!.url('http', repo)], { timeoutMs });
      const s = (performance.now() - t0) / 1000;
      rmSync(mirror, { recursive: true, force: true });
      return s;
    };
    const runs = opts.quick ? 1 : opts.runs;
    opts.out(`F5: filling an empty backend with ${sizeLabel}, ${runs} interleaved pairs`);
    const t = { byHand: [] as number[], relay: [] as number[] };
    for (let i = 0; i < runs; i++) {
      t.byHand.push(await byHand());
      t.relay.push(await relay());
    }
    const r = pairedRatio(t.byHand, t.relay);
    return {
      rows: [
        {
          figure: 'F5',
          measured: `fill an empty backend with ${sizeLabel}: clone --mirror + push --mirror ${fmt(r.baseline)} s, githa relay ${fmt(r.subject)} s (median of ${runs})`,
          result: `${fmtRatio(r)} ×`,
          goal: '≤ 0.6',
          met: r.ratio <= 0.6,
        },
      ],
      data: { F5: { seconds: t, ratio: r } },
    };
  } finally {
    await Promise.all([from.close(), to.close()]);
    redis.disconnect();
    rmSync(mirror, { recursive: true, force: true });
  }
}
