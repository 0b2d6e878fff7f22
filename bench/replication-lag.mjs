#!/usr/bin/env node
/**
 * Replication-lag benchmark (design: "Background replication": a small push
 * should reach every healthy backend in well under a second).
 *
 *   npm run build && node bench/replication-lag.mjs [--pushes 100] [--poll-ms 5]
 *
 * Starts a dev cluster (redis-server and three stock Git backends) and githa
 * in this process with the default replication settings (writeQuorum = a
 * majority = 2, background replication on), then makes N small pushes (one
 * commit each) with the real git client through githa's smart HTTP. For each
 * push it measures
 *
 *   ack  = how long `git push` ran (until githa acknowledged it), and
 *   lag  = from the push command's exit to the moment the last of the three
 *          backends has that commit as its refs/heads/main on disk (loose ref
 *          or packed-refs, polled every --poll-ms).
 *
 * and prints p50/p90/p99/max of the lag and p50/p99 of the ack times (the
 * baseline). Quorum copies go to every other backend at once and the push is
 * acknowledged after the first K−1, so the last copy often lands before the
 * git client has even exited (lag ≈ 0): the script therefore also prints, from
 * the push log in Redis (stream ids, Redis clock), the time from githa's
 * commit of each push to the last backend's recorded copy of that version. Pushes run one after another: the next starts once the previous
 * commit is on every backend (or after a 10 s timeout, counted separately).
 * Everything started here is stopped at the end, also on error or Ctrl-C.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { Redis } from 'ioredis';
import { buildConfig } from '../dist/config/load.js';
import { startDevCluster } from '../dist/demo/cluster.js';
import { startGitha } from '../dist/githa.js';
import { createLogger } from '../dist/log.js';

const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const REPO = 'bench/lag.git';
const LAG_TIMEOUT_MS = 10_000;

const { values } = parseArgs({
  options: {
    pushes: { type: 'string', default: '100' },
    'poll-ms': { type: 'string', default: '5' },
  },
});
const PUSHES = Number(values.pushes);
const POLL_MS = Number(values['poll-ms']);
if (!(PUSHES > 0) || !(POLL_MS > 0)) {
  process.stderr.write('usage: node bench/replication-lag.mjs [--pushes N] [--poll-ms MS]\n');
  process.exit(2);
}

/** The branch tip of `refs/heads/main` in a bare repository on disk: loose ref first, then packed-refs. */
function tipOnDisk(gitDir) {
  try {
    const loose = readFileSync(join(gitDir, 'refs/heads/main'), 'utf8').trim();
    if (/^[0-9a-f]{40,64}$/.test(loose)) return loose;
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  try {
    for (const line of readFileSync(join(gitDir, 'packed-refs'), 'utf8').split('\n')) {
      if (line.endsWith(' refs/heads/main')) return line.slice(0, line.indexOf(' '));
    }
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  return undefined;
}

/** Nearest-rank percentile of a sorted array. */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Set on SIGINT/SIGTERM: the run stops, and failures caused by the teardown are not reported. */
let interrupted = false;

const fmt = (ms) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : 'n/a');

async function main() {
  let cluster;
  let githa;
  let redis;
  let stopping = false;
  const cleanup = async () => {
    if (stopping) return;
    stopping = true;
    redis?.disconnect();
    await githa?.close().catch((err) => process.stderr.write(`stopping githa: ${err.message}\n`));
    await cluster?.stop().catch((err) => process.stderr.write(`stopping the dev cluster: ${err.message}\n`));
  };
  const onSignal = (signal) => {
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping…\n`);
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    cluster = await startDevCluster({ backends: 3 });
    await cluster.createRepository(REPO);
    const config = buildConfig(
      {
        listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0' },
        redis: { url: cluster.redis.url },
        backends: cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl })),
        log: { level: 'warn' },
      },
      {},
    );
    githa = await startGitha(config, createLogger('warn'));
    const url = `http://127.0.0.1:${githa.addresses.http.port}/${REPO}`;
    const gitDirs = cluster.backends.map((b) => b.repoPath(REPO));

    const home = join(cluster.dir, 'bench-home');
    mkdirSync(home, { recursive: true });
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      LANG: 'C.UTF-8',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      GIT_AUTHOR_NAME: 'bench',
      GIT_AUTHOR_EMAIL: 'bench@githa.invalid',
      GIT_COMMITTER_NAME: 'bench',
      GIT_COMMITTER_EMAIL: 'bench@githa.invalid',
    };
    const work = join(cluster.dir, 'bench-work');
    await run('git', ['init', '-q', '-b', 'main', work], { env });
    const git = (args) => run('git', ['-C', work, ...args], { env, maxBuffer: 1 << 24 });

    process.stdout.write(
      `githa ${config.proxyId}: writeQuorum ${config.replication.writeQuorum} of ${config.backends.length}, ` +
        `background replication ${config.replication.background ? 'on' : 'off'}; ${PUSHES} pushes, polling every ${POLL_MS} ms\n`,
    );

    const acks = [];
    const lags = [];
    const atAck = [0, 0, 0, 0];
    let timeouts = 0;
    for (let i = 1; i <= PUSHES && !interrupted; i++) {
      writeFileSync(join(work, 'n.txt'), `push ${i} ${Date.now()}\n`);
      await git(['add', 'n.txt']);
      await git(['commit', '-q', '-m', `push ${i}`]);
      const sha = (await git(['rev-parse', 'HEAD'])).stdout.trim();

      const t0 = performance.now();
      await git(['push', '-q', url, 'main']);
      const acked = performance.now();
      acks.push(acked - t0);

      const have = () => gitDirs.filter((d) => tipOnDisk(d) === sha).length;
      atAck[have()]++;
      let done;
      for (;;) {
        if (interrupted) return;
        if (have() === gitDirs.length) {
          done = performance.now();
          break;
        }
        if (performance.now() - acked > LAG_TIMEOUT_MS) break;
        await sleep(POLL_MS);
      }
      if (done === undefined) timeouts++;
      else lags.push(done - acked);
      if (i % 20 === 0) process.stdout.write(`  ${i}/${PUSHES} pushes\n`);
    }

    const sortedLags = [...lags].sort((a, b) => a - b);
    const sortedAcks = [...acks].sort((a, b) => a - b);
    process.stdout.write('\nreplication lag: push acknowledged → commit on all 3 backends\n');
    process.stdout.write(
      `  p50 ${fmt(percentile(sortedLags, 50))}   p90 ${fmt(percentile(sortedLags, 90))}   p99 ${fmt(percentile(sortedLags, 99))}   ` +
        `max ${fmt(sortedLags[sortedLags.length - 1])}   (n=${lags.length}${timeouts ? `, ${timeouts} not on every backend within ${LAG_TIMEOUT_MS} ms` : ''})\n`,
    );
    process.stdout.write('baseline: push duration (ack time, git push start → exit)\n');
    process.stdout.write(`  p50 ${fmt(percentile(sortedAcks, 50))}   p99 ${fmt(percentile(sortedAcks, 99))}   (n=${acks.length})\n`);
    process.stdout.write(`backends holding the commit at the moment of the ack: ${atAck.map((n, k) => `${k}: ${n}`).join(', ')}\n`);

    // From the push log: githa's commit of version V → the last backend recorded at V (late quorum copy or replicator).
    redis = new Redis(cluster.redis.url, { maxRetriesPerRequest: 1 });
    const entries = await redis.xrange(`${config.redis.prefix}repo:{${REPO}}:log`, '-', '+');
    const committed = new Map();
    const lastCopy = new Map();
    for (const [id, flat] of entries) {
      const f = {};
      for (let k = 0; k < flat.length; k += 2) f[flat[k]] = flat[k + 1];
      const at = Number(id.split('-')[0]);
      if (f.event === 'push') committed.set(f.version, at);
      else if (f.event === 'catch-up') lastCopy.set(f.version, Math.max(lastCopy.get(f.version) ?? 0, at));
    }
    const recorded = [...committed].map(([v, at]) => Math.max(at, lastCopy.get(v) ?? at) - at).sort((a, b) => a - b);
    process.stdout.write(`githa's commit → last backend recorded at that version (push log, ms resolution, ${recorded.length} pushes)\n`);
    process.stdout.write(
      `  p50 ${fmt(percentile(recorded, 50))}   p90 ${fmt(percentile(recorded, 90))}   p99 ${fmt(percentile(recorded, 99))}   max ${fmt(recorded[recorded.length - 1])}\n`,
    );
    if (timeouts > 0) process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

main().catch((err) => {
  if (interrupted) return;
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exitCode = 1;
});
