/**
 * How long githa takes to fill a new backend (issue 18 item 4; docs/performance.md
 * "Filling a new backend"): a dev cluster of three backends; `repos`
 * repositories on b1 and b2 only (small: three commits, a few KiB each; or
 * one of `bigMb` MB of random, incompressible blobs), adopted through a
 * githa that knows only b1 and b2. Then githa (the whole composition root,
 * src/githa.ts startGitha, in this process) starts with b3 added, empty,
 * `admin: true`: its replicator finds every copy on b3 missing, creates it
 * over SSH (src/cluster/fill.ts) and catches it up. Timed: from githa's
 * start to every repository recorded current on b3 (Redis polled every
 * 250 ms), and the first one.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { buildConfig } from '../../src/config/load.js';
import { startDevCluster, type DevCluster } from '../../src/demo/cluster.js';
import { minimalEnv, run } from '../../src/demo/process.js';
import { buildCluster, startGitha } from '../../src/githa.js';
import { createLogger } from '../../src/log.js';
import { redisReady } from '../../src/state/redis.js';

export interface FillTimeOptions {
  /** Small repositories to fill (ignored with bigMb). */
  repos: number;
  /** One repository of this many MB of random blobs instead. */
  bigMb?: number;
  /** repositories.fillConcurrency (default: githa's default). */
  fillConcurrency?: number;
  out: (line: string) => void;
}

export interface FillTime {
  repos: number;
  /** Bytes of the repositories on b1 (du of their directories). */
  bytes: number;
  fillConcurrency: number;
  /** githa start → the first repository recorded current on b3. */
  firstMs: number;
  /** githa start → all of them. */
  allMs: number;
}

const ENV = minimalEnv({ GIT_CONFIG_NOSYSTEM: '1', HOME: '/nonexistent', GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@githa.invalid', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@githa.invalid' });

/** A bare repository at `bare` from a work tree of `commits`, each a set of files. */
async function makeRepository(dir: string, bare: string, commits: Record<string, Buffer | string>[]): Promise<void> {
  const work = join(dir, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const git = (args: string[]): Promise<string> => run('git', args, { env: ENV, cwd: work, timeoutMs: 600_000 });
  await git(['init', '-q', '--initial-branch=main']);
  for (const [i, files] of commits.entries()) {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(work, name), content);
    await git(['add', '-A']);
    await git(['commit', '-q', '-m', `c${i + 1}`]);
  }
  await git(['tag', 'v1']);
  rmSync(bare, { recursive: true, force: true });
  await run('git', ['clone', '-q', '--bare', work, bare], { env: ENV, timeoutMs: 600_000 });
  await run('git', ['--git-dir', bare, 'config', 'http.receivepack', 'true'], { env: ENV });
  // Packed, as a leader's objects are once git gc ran: upload-pack reuses the pack's compressed data.
  await run('git', ['--git-dir', bare, 'repack', '-a', '-d', '-q'], { env: ENV, timeoutMs: 600_000 });
  rmSync(work, { recursive: true, force: true });
}

async function duBytes(paths: string[]): Promise<number> {
  let total = 0;
  for (let i = 0; i < paths.length; i += 200) {
    const out = await run('du', ['-s', '-B1', ...paths.slice(i, i + 200)], { env: ENV });
    for (const line of out.split('\n')) if (line.trim()) total += Number(line.split('\t')[0]);
  }
  return total;
}

/** The repositories on b1 and b2, identical, recorded (adopted) by a githa that knows only those two. */
async function seed(cluster: DevCluster, dir: string, names: string[], bigMb: number | undefined): Promise<void> {
  const tmpl = join(dir, 'tmpl.git');
  if (bigMb !== undefined) {
    // Random bytes: no delta and no zlib gain, the pack is as large as the data.
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < Math.ceil(bigMb / 10); i++) files[`blob${i}.bin`] = randomBytes(Math.min(10, bigMb - i * 10) * 1024 * 1024);
    await makeRepository(dir, tmpl, [{ 'README.md': 'big\n' }, files]);
  } else {
    await makeRepository(dir, tmpl, [1, 2, 3].map((i) => ({ 'README.md': `small ${i}\n`, [`f${i}.txt`]: randomBytes(1024).toString('hex') })));
  }
  for (const id of ['b1', 'b2']) for (const name of names) cpSync(tmpl, cluster.backend(id).repoPath(name), { recursive: true });
  const config = buildConfig({ redis: { url: cluster.redis.url }, backends: ['b1', 'b2'].map((id) => ({ id, http: cluster.backend(id).httpUrl })), log: { level: 'warn' } }, {});
  const parts = buildCluster(config, createLogger('warn'));
  try {
    if (!(await redisReady(parts.redis, 5_000))) throw new Error('Redis did not answer');
    // The first read of each records its copies (adoption), eight at a time.
    for (let i = 0; i < names.length; i += 8) await Promise.all(names.slice(i, i + 8).map((n) => parts.cluster.routeRead(n)));
  } finally {
    await parts.close();
  }
}

export async function measureFillTime(o: FillTimeOptions): Promise<FillTime> {
  const dir = mkdtempSync(join(tmpdir(), 'githa-fill-time-'));
  const cluster = await startDevCluster({ backends: 3, dir });
  const redis = new Redis(cluster.redis.url, { maxRetriesPerRequest: 1 });
  try {
    const names = o.bigMb !== undefined ? ['ft/big.git'] : Array.from({ length: o.repos }, (_, i) => `ft/r${i + 1}.git`);
    await seed(cluster, dir, names, o.bigMb);
    const bytes = await duBytes(names.map((n) => cluster.backend('b1').repoPath(n)));
    o.out(`fill-time: ${names.length} repositories (${(bytes / 1e6).toFixed(1)} MB on b1) recorded on b1 and b2; b3 is empty`);
    const config = buildConfig(
      {
        listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0' },
        redis: { url: cluster.redis.url },
        ssh: { backendKey: cluster.ssh.clientKeyPath, backendKnownHosts: cluster.ssh.knownHostsPath },
        backends: cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl, ssh: b.sshUrl, ...(b.id === 'b3' ? { admin: true } : {}) })),
        // Nothing but the fill: no verifier sweep meanwhile.
        verify: { intervalMs: 0 },
        ...(o.fillConcurrency !== undefined ? { repositories: { fillConcurrency: o.fillConcurrency } } : {}),
        log: { level: 'warn' },
      },
      {},
    );
    const started = performance.now();
    const githa = await startGitha(config, createLogger('warn'));
    let firstMs = 0;
    let allMs = 0;
    try {
      const deadline = started + 6 * 3600_000;
      let said = 0;
      while (performance.now() < deadline) {
        const pipe = redis.pipeline();
        for (const n of names) pipe.hget(`githa:repo:{${n}}:versions`, 'b3');
        // Redis gone (the cluster stopped under us): fails the measurement rather than waiting for nothing.
        const done = ((await pipe.exec()) ?? []).filter(([err, v]) => !err && v !== null).length;
        const now = performance.now() - started;
        if (now - said >= 10_000) {
          said = now;
          o.out(`fill-time: ${done} of ${names.length} current on b3 after ${(now / 1000).toFixed(0)} s`);
        }
        if (done > 0 && firstMs === 0) firstMs = now;
        if (done === names.length) {
          allMs = now;
          break;
        }
        await sleep(250);
      }
      if (allMs === 0) throw new Error('b3 was not filled within 6 hours');
    } finally {
      await githa.close();
    }
    return { repos: names.length, bytes, fillConcurrency: config.repositories.fillConcurrency, firstMs, allMs };
  } finally {
    redis.disconnect();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

export function formatFillTime(t: FillTime): string[] {
  return [
    `filling a new backend: ${t.repos} repositories, ${(t.bytes / 1e6).toFixed(1)} MB on a leader, repositories.fillConcurrency ${t.fillConcurrency}`,
    `  first repository current:   ${(t.firstMs / 1000).toFixed(1)} s after githa started`,
    `  all repositories current:   ${(t.allMs / 1000).toFixed(1)} s (${((t.repos * 1000) / t.allMs).toFixed(1)} repositories/s; ${((t.bytes / 1e6) / (t.allMs / 1000)).toFixed(1)} MB/s)`,
  ];
}
