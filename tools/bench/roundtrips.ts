/**
 * Redis round trips per read and per write (issue 9: "goal: one round trip on
 * the read path in the common case"). githa `r` talks to Redis through the
 * counting relay (redis-counter.ts). For each operation, after a warm-up (the
 * repository's adoption, connection set-up), the turns that touch the
 * repository's keys (its hash tag) are counted over 5 runs; the other turns
 * seen meanwhile (health sharing, the replicator, override reloads) are
 * listed apart: background work, not the request's.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeChains } from './commits.js';
import type { BenchEnv, BenchOptions, FigureOutput } from './env.js';
import { describeTurn, turnsFor, type Turn } from './redis-counter.js';
import { median, type FigureRow } from './stats.js';

interface Counted {
  operation: string;
  /** Requests githa serves for it (HTTP: info/refs, then the POST; SSH: one session). */
  requests: number;
  /** Median over the runs of the turns touching the repository. */
  roundTrips: number;
  /** Each distinct sequence of turns seen, e.g. "EVALSHA → HGETALL×7 + EXISTS + HGET". */
  sequences: string[];
  /** Turns not touching the repository seen during the runs (background). */
  other: string[];
}

export async function roundTripFigure(env: BenchEnv, opts: BenchOptions): Promise<FigureOutput> {
  const g = env.githa.r;
  const repo = 'rt.git';
  await env.cluster.createRepository(repo);
  const local = join(env.work, 'rt-local.git');
  const { root, chains } = await makeChains(local, [{ name: 'main', count: 12 }]);
  const commits = [...chains.get('main')!];
  await env.git(['--git-dir', local, 'push', '-q', g.url(repo), `${root}:refs/heads/main`]);
  const v2 = ['-c', 'protocol.version=2'];
  const ops: Array<[string, number, () => string[]]> = [
    ['read: ls-remote over HTTP (GET info/refs + POST ls-refs)', 2, () => [...v2, 'ls-remote', g.url(repo)]],
    ['read: ls-remote over SSH (one session)', 1, () => [...v2, 'ls-remote', g.sshUrl(repo)]],
    ['write: push of one commit over HTTP (GET info/refs + POST receive-pack)', 2, () => ['--git-dir', local, 'push', '-q', g.url(repo), `${commits.shift()!}:refs/heads/main`]],
    ['write: push of one commit over SSH (one session)', 1, () => ['--git-dir', local, 'push', '-q', g.sshUrl(repo), `${commits.shift()!}:refs/heads/main`]],
  ];
  const counted: Counted[] = [];
  for (const [operation, requests, args] of ops) {
    await env.git(args()); // warm-up
    await sleep(200); // let the warm-up's background work (replication of a push) pass
    const counts: number[] = [];
    const sequences = new Set<string>();
    const other = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const mark = env.counter.mark();
      await env.git(args());
      const turns: Turn[] = env.counter.since(mark);
      const mine = turnsFor(turns, repo);
      counts.push(mine.length);
      sequences.add(mine.map(describeTurn).join(' → '));
      for (const t of turns) if (!mine.includes(t)) other.add(describeTurn(t));
      await sleep(100);
    }
    counted.push({ operation, requests, roundTrips: median(counts), sequences: [...sequences], other: [...other] });
  }
  opts.out('Redis round trips (githa r, through the counting relay):');
  for (const c of counted) opts.out(`  ${c.operation}: ${c.roundTrips}  [${c.sequences.join(' | ')}]${c.other.length ? `  (background meanwhile: ${c.other.join('; ')})` : ''}`);
  const rows: FigureRow[] = counted.map((c) => {
    const read = c.operation.startsWith('read');
    const perRequest = c.roundTrips / c.requests;
    return {
      figure: `RT ${read ? 'read' : 'write'}`,
      measured: `Redis round trips, ${c.operation.slice(c.operation.indexOf(':') + 2)} (median of 5; the commands: bench/results.json)`,
      result: `${c.roundTrips} (${perRequest.toFixed(1)} per request)`,
      goal: read ? '1 per request' : '(counted)',
      met: read ? perRequest <= 1 : undefined,
    };
  });
  return { rows, data: { roundTrips: counted } };
}
