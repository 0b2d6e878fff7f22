/**
 * The soak test of issue 19's acceptance (docs/security.md "Soak test"):
 * phase A, legitimate load alone; phase B, the same load while the attacks
 * of items 1–6 run. Meanwhile githa's RSS is sampled every second from
 * /proc/PID/status (VmRSS), and every backend's shared health in Redis
 * (githa:backend:<id> health, docs/redis.md) every 5 s.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseStatusKb } from '../bench/procstat.js';
import { Attacks, type AttackStats } from './attacks.js';
import { RSS_BOUND_BYTES, startSoakEnv, type SoakEnv } from './env.js';
import { LegitWorker } from './legit.js';
import { metricSum, summarize, summarizeByKind, type LatencySummary, type Op, type SoakFigures } from './summary.js';

export interface SoakOptions {
  baselineMs: number;
  durationMs: number;
  workers: number;
  keep: boolean;
  progress: (line: string) => void;
}

export interface SoakResult {
  figures: SoakFigures;
  byKind: { A: Array<[string, LatencySummary]>; B: Array<[string, LatencySummary]> };
  failures: Array<Op & { phase: string }>;
  attacks: Record<string, AttackStats>;
  rss: { baselinePeak: number; attackPeak: number };
  idleGitClosed: number;
  /** githa_held_bytes{kind="peak"} and {kind="limit"}: what githa counted as held for clients, at most. */
  held: { peak: number; limit: number };
  dir: string;
}

function rssOf(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    if (/^State:\s+Z/m.test(status)) return undefined;
    return parseStatusKb(status, 'VmRSS');
  } catch {
    return undefined;
  }
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  o.progress('starting the dev cluster and githa …');
  const env: SoakEnv = await startSoakEnv({ workers: o.workers, keep: o.keep });
  const { githa, cluster } = env;
  const workers = Array.from({ length: o.workers }, (_, i) => new LegitWorker(env, i));
  const attacks = new Attacks(env);
  let phase: 'A' | 'B' = 'A';
  const peak = { A: 0, B: 0 };
  let crashed = false;
  const down = new Set<string>();
  let sampling = true;
  const sampler = (async () => {
    for (let tick = 0; sampling; tick++) {
      const rss = rssOf(githa.pid);
      if (rss === undefined) crashed = true;
      else peak[phase] = Math.max(peak[phase], rss);
      if (tick % 5 === 0) {
        for (const b of cluster.backends) {
          const health = await cluster.redis.cli('HGET', `githa:backend:${b.id}`, 'health').catch(() => '');
          if (health === 'down') down.add(`${b.id} (redis)`);
        }
      }
      if (tick % 30 === 0) o.progress(`phase ${phase}: RSS ${((rss ?? 0) / 1024 / 1024).toFixed(0)} MiB, ${workers.reduce((n, w) => n + w.ops.length, 0)} operations`);
      await sleep(1_000);
    }
  })();
  let metrics: string;
  try {
    for (const w of workers) await w.setup();
    o.progress(`phase A: ${o.baselineMs / 1000} s of legitimate load (${o.workers} workers)`);
    for (const w of workers) w.start();
    for (const w of workers) w.phase = 'A';
    await sleep(o.baselineMs);
    phase = 'B';
    for (const w of workers) w.phase = 'B';
    o.progress(`phase B: ${o.durationMs / 1000} s of legitimate load under attack`);
    attacks.start();
    await sleep(o.durationMs);
    for (const w of workers) w.phase = 'drain';
    await attacks.stop();
    await Promise.all(workers.map((w) => w.stop()));
    if (rssOf(githa.pid) === undefined) crashed = true;
    metrics = crashed ? '' : await (await fetch(`http://127.0.0.1:${githa.adminPort}/metrics`)).text();
  } finally {
    sampling = false;
    await sampler;
    await attacks.stop();
  }
  const log = readFileSync(githa.logFile, 'utf8');
  const logLines = log.split('\n');
  for (const l of logLines.filter((l) => l.includes('"backend down"'))) down.add(`log: ${l.slice(0, 200)}`);
  const idleGitClosed = logLines.filter((l) => l.includes('"git:// connection idle, closed"')).length;
  await env.stop();
  const ops = workers.flatMap((w) => w.ops);
  const A = ops.filter((x) => x.phase === 'A');
  const B = ops.filter((x) => x.phase === 'B');
  const refusals = {
    '1 gzip command lists (held-bytes refusals)': metricSum(metrics, 'githa_held_bytes_refusals_total'),
    '2 ssh channels (sessions, user-requests)': metricSum(metrics, 'githa_ssh_refused_total', ['reason="sessions"']) + metricSum(metrics, 'githa_ssh_refused_total', ['reason="user-requests"']),
    '3 idle git:// (per-address refusals)': metricSum(metrics, 'githa_requests_total', ['transport="git"', 'TOO_MANY_CONNECTIONS']),
    '4 wrong passwords (auth failures)': metricSum(metrics, 'githa_auth_failures_total'),
    '5 slow push (pushes limited)': metricSum(metrics, 'githa_pushes_limited_total', ['reason="slow"']),
    '6 idle ssh pre-auth (startups)': metricSum(metrics, 'githa_ssh_refused_total', ['reason="client-startups"']) + metricSum(metrics, 'githa_ssh_refused_total', ['reason="startups"']),
  };
  return {
    figures: {
      baseline: summarize(A),
      attacked: summarize(B),
      peakRssBytes: Math.max(peak.A, peak.B),
      rssBoundBytes: RSS_BOUND_BYTES,
      crashed,
      backendsDown: [...down],
      refusals,
    },
    byKind: { A: summarizeByKind(A), B: summarizeByKind(B) },
    failures: ops.filter((x) => !x.ok),
    attacks: attacks.stats,
    rss: { baselinePeak: peak.A, attackPeak: peak.B },
    idleGitClosed,
    held: { peak: metricSum(metrics, 'githa_held_bytes', ['kind="peak"']), limit: metricSum(metrics, 'githa_held_bytes', ['kind="limit"']) },
    dir: cluster.dir,
  };
}
