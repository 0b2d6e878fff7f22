/**
 * IDLE (issue 22 item 5; docs/performance.md "Idle cost"): what one idle githa
 * costs at 10,000, 100,000 and 1,000,000 repositories — its CPU (% of one
 * core, /proc) and the Redis commands per second (INFO stats
 * total_commands_processed) over a window with no request at all. The
 * records are synthetic, written straight into Redis by a server-side loop
 * (versions, checksums and meta of N whole repositories on three backends,
 * and githa:repos): no repository exists on the backends, and none needs
 * work. The window starts once githa settled: its start-up work (the work
 * index's first sweep, logged as "work index swept") is timed on its own.
 * BENCH_GITHA_MAIN=<other tree>/dist/cli/main.js measures another build (the
 * "before" of docs/performance.md); BENCH_IDLE_SIZES=1000000 one size only.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startDevCluster } from '../../src/demo/cluster.js';
import { generateKey } from '../../src/demo/ssh.js';
import type { BenchOptions, FigureOutput } from './env.js';
import { startGithaChild } from './githa-process.js';
import { totalCpu } from './procstat.js';
import type { FigureRow } from './stats.js';

const SEED_LUA = `
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local repo = 'idle/r' .. i .. '.git'
  redis.call('HSET', 'githa:repo:{' .. repo .. '}:versions', 'b1', '1', 'b2', '1', 'b3', '1')
  redis.call('HSET', 'githa:repo:{' .. repo .. '}:checksums', 'b1', 'c', 'b2', 'c', 'b3', 'c')
  redis.call('HSET', 'githa:repo:{' .. repo .. '}:meta', 'epoch', 'e', 'since', '1')
  redis.call('ZADD', 'githa:repos', 1, repo)
end
return 1`;

async function commandsProcessed(redis: Redis): Promise<number> {
  const m = /total_commands_processed:(\d+)/.exec(await redis.info('stats'));
  return Number(m?.[1] ?? 0);
}

export interface IdlePoint {
  repositories: number;
  seedSeconds: number;
  /** githa's start → "work index swept" (this tree), or the settle time (a build without the index). */
  startSeconds: number;
  /** githa's CPU seconds from its start to settled (the sweep's cost, with the boot's). */
  startCpuSeconds: number;
  windowSeconds: number;
  cpuPercent: number;
  redisCommandsPerSecond: number;
}

export async function idleFigure(opts: Pick<BenchOptions, 'quick' | 'out'>): Promise<FigureOutput> {
  // BENCH_IDLE_SIZES=1000000 measures only that size (comma-separated).
  const asked = (process.env.BENCH_IDLE_SIZES ?? '').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const sizes = asked.length > 0 ? asked : opts.quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000];
  const windowMs = opts.quick ? 20_000 : 60_000;
  const main = process.env.BENCH_GITHA_MAIN || undefined;
  const cluster = await startDevCluster({ backends: 3 });
  const points: IdlePoint[] = [];
  try {
    const hostKey = join(cluster.dir, 'githa_host_ed25519_key');
    await generateKey(hostKey, 'githa-bench');
    const authorizedKeys = join(cluster.dir, 'githa_authorized_keys');
    writeFileSync(authorizedKeys, `environment="GITHA_USER=bench" ${cluster.ssh.clientPublicKey}\n`);
    const redis = new Redis(cluster.redis.url, { maxRetriesPerRequest: 0, commandTimeout: 600_000 });
    try {
      for (const n of sizes) {
        await redis.flushall();
        const t0 = performance.now();
        for (let from = 0; from < n; from += 20_000) await redis.eval(SEED_LUA, 0, from, Math.min(n, from + 20_000) - 1);
        const seedSeconds = (performance.now() - t0) / 1000;
        opts.out(`  IDLE ${n.toLocaleString('en')} repositories seeded in ${seedSeconds.toFixed(1)} s`);
        const started = performance.now();
        const githa = await startGithaChild({ name: `idle-${n}`, cluster, hostKey, authorizedKeys, main, config: { verify: { intervalMs: 0 } } });
        try {
          // Settled: the sweep logged (this tree), or 5 s after listening (a build without the work index).
          const until = performance.now() + 600_000;
          let swept = false;
          while (!swept && performance.now() < until) {
            swept = readFileSync(githa.logFile, 'utf8').includes('work index swept');
            if (!swept && main && performance.now() - started > 5_000) break;
            await sleep(250);
          }
          const startSeconds = (performance.now() - started) / 1000;
          const startCpuSeconds = totalCpu(githa.pid);
          await sleep(2_000);
          const cpu0 = totalCpu(githa.pid);
          const cmd0 = await commandsProcessed(redis);
          const w0 = performance.now();
          await sleep(windowMs);
          const cpu1 = totalCpu(githa.pid);
          const cmd1 = await commandsProcessed(redis);
          const windowSeconds = (performance.now() - w0) / 1000;
          const point: IdlePoint = {
            repositories: n,
            seedSeconds,
            startSeconds,
            startCpuSeconds,
            windowSeconds,
            cpuPercent: ((cpu1 - cpu0) / windowSeconds) * 100,
            // The two INFO calls themselves count: one each.
            redisCommandsPerSecond: (cmd1 - cmd0 - 1) / windowSeconds,
          };
          points.push(point);
          opts.out(`  IDLE ${n.toLocaleString('en')}: start ${startSeconds.toFixed(1)} s (githa CPU ${startCpuSeconds.toFixed(1)} s), CPU ${point.cpuPercent.toFixed(2)} % of a core, Redis ${point.redisCommandsPerSecond.toFixed(1)} commands/s`);
        } finally {
          await githa.stop();
        }
      }
    } finally {
      redis.disconnect();
    }
  } finally {
    await cluster.stop();
  }
  const rows: FigureRow[] = points.map((p) => ({
    figure: `IDLE ${p.repositories.toLocaleString('en')}`,
    measured: `one idle githa, ${p.repositories.toLocaleString('en')} whole repositories (synthetic), ${p.windowSeconds.toFixed(0)} s window; start-up ${p.startSeconds.toFixed(1)} s (${p.startCpuSeconds.toFixed(1)} CPU s)`,
    result: `${p.cpuPercent.toFixed(2)} % CPU, ${p.redisCommandsPerSecond.toFixed(1)} Redis cmd/s`,
    goal: p.repositories === 1_000_000 ? '< 2 % of a core' : '',
    met: p.repositories === 1_000_000 ? p.cpuPercent < 2 : undefined,
  }));
  return { rows, data: { idle: { build: main ?? 'this tree', points } } };
}
