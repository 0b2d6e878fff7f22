/**
 * githa on Redis Sentinel (config `redis.sentinels`, `redis.name`,
 * `redis.waitReplicas`; docs/deploy.md#redis-sentinel), with real servers: the
 * dev cluster's redis-server as the master, two replicas (`--replicaof`) and
 * three sentinels (`redis-server <conf> --sentinel`), all on 127.0.0.1.
 *
 * Pushes run through githa while the master is SIGKILLed and the sentinels
 * promote a replica. Redis replicates asynchronously; githa waits (WAIT 1) for
 * a replica after each write-path script, so every acknowledged push — its
 * version bump and its push-log entry — is on the promoted replica, and
 * versions never go back.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCALHOST, PortServer, exchange, minimalEnv, type PidTracker } from '../../src/demo/process.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { waitFor } from '../support/state.js';

const NAME = 'mymaster';
const REPOS = ['sentinel/a', 'sentinel/b'];

const cluster = useCluster({ backends: 3, repositories: REPOS, restoreAfterEach: false });
const replicas: PortServer[] = [];
const sentinels: PortServer[] = [];
const clients: Redis[] = [];

/** Lets the dev cluster's watchdog kill these servers too should this process die. */
function tracker(): PidTracker {
  const untrack = new Map<number, () => void>();
  return {
    add: (pid) => void untrack.set(pid, cluster().track(pid)),
    remove: (pid) => untrack.get(pid)?.(),
  };
}

const pingProbe = async (port: number): Promise<boolean> => (await exchange(port, 'PING\r\n', 1000))?.startsWith('+PONG') ?? false;

function replica(i: number, masterPort: number): PortServer {
  const dir = join(cluster().dir, `replica${i}`);
  mkdirSync(dir, { recursive: true });
  return new PortServer({
    name: `replica${i}`,
    logFile: join(dir, 'redis.log'),
    tracker: tracker(),
    build: (port) => ({
      command: 'redis-server',
      // prettier-ignore
      args: ['--port', String(port), '--bind', LOCALHOST, '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', dir,
        '--replicaof', LOCALHOST, String(masterPort)],
      env: minimalEnv(),
      cwd: dir,
    }),
    probe: pingProbe,
  });
}

function sentinel(i: number, masterPort: number): PortServer {
  const dir = join(cluster().dir, `sentinel${i}`);
  mkdirSync(dir, { recursive: true });
  return new PortServer({
    name: `sentinel${i}`,
    logFile: join(dir, 'sentinel.log'),
    tracker: tracker(),
    build: (port) => {
      // Sentinel rewrites its config file (discovered replicas and sentinels): it must be writable.
      const conf = join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${port}`,
          `bind ${LOCALHOST}`,
          'protected-mode no',
          `dir ${dir}`,
          `sentinel monitor ${NAME} ${LOCALHOST} ${masterPort} 2`,
          // Long enough that a loaded CI machine does not fail over by itself, short enough for the test.
          `sentinel down-after-milliseconds ${NAME} 2000`,
          `sentinel failover-timeout ${NAME} 10000`,
          `sentinel parallel-syncs ${NAME} 2`,
          '',
        ].join('\n'),
      );
      return { command: 'redis-server', args: [conf, '--sentinel'], env: minimalEnv(), cwd: dir };
    },
    probe: pingProbe,
  });
}

function connect(port: number): Redis {
  const r = new Redis({ host: LOCALHOST, port, maxRetriesPerRequest: 1, lazyConnect: false });
  r.on('error', () => {});
  clients.push(r);
  return r;
}

/** SENTINEL MASTER <name> as an object. */
async function sentinelView(s: Redis): Promise<Record<string, string>> {
  const flat = (await s.call('SENTINEL', 'MASTER', NAME)) as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

beforeAll(async () => {
  const masterPort = cluster().redis.port;
  for (const i of [1, 2]) replicas.push(replica(i, masterPort));
  for (const r of replicas) await r.start();
  for (const i of [1, 2, 3]) sentinels.push(sentinel(i, masterPort));
  for (const s of sentinels) await s.start();
  // A failover needs a majority of sentinels that know each other (hello messages every 2 s) and the replicas.
  const views = sentinels.map((s) => connect(s.port));
  await waitFor(
    'three sentinels that see each other, the master and both replicas',
    async () => {
      for (const v of views) {
        const m = await sentinelView(v);
        if (m['num-slaves'] !== '2' || m['num-other-sentinels'] !== '2' || m.flags !== 'master') return false;
      }
      return true;
    },
    30_000,
  );
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all([...sentinels, ...replicas].map((s) => s.stop('SIGKILL')));
});

/** The master's port as the sentinels answer it now. */
async function masterPort(): Promise<number> {
  const s = clients[0]!;
  const [, port] = (await s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME)) as [string, string];
  return Number(port);
}

interface Acked {
  repo: string;
  branch: string;
  sha: string;
}

describe('Redis Sentinel', () => {
  it('a failover during pushes loses no acknowledged push, and versions never go back', async () => {
    const addresses = sentinels.map((s) => `${LOCALHOST}:${s.port}`);
    const githa: GithaProcess = await startGitha(cluster(), {
      logLevel: 'info',
      config: {
        redis: { sentinels: addresses, name: NAME, waitReplicas: 1, waitTimeoutMs: 2_000, commandTimeoutMs: 3_000 },
        // A push cut by the failover leaves its marker: resolve it (and end the suspect period) within seconds.
        locks: { leaseMs: 3_000, waitMs: 5_000 },
        interruptions: { staleAfterMs: 3_000, suspectGraceMs: 2_000 },
        verify: { intervalMs: 0 },
      },
    });
    // The test's own view of the state: through the sentinels, like githa.
    const state = new Redis({ sentinels: sentinels.map((s) => ({ host: LOCALHOST, port: s.port })), name: NAME, maxRetriesPerRequest: 1 });
    state.on('error', () => {});
    clients.push(state);
    const maxVersion = async (repo: string): Promise<number> => Math.max(0, ...(await state.hvals(`githa:repo:{${repo}.git}:versions`)).map(Number));

    const acked: Acked[] = [];
    const seen = new Map<string, number[]>(REPOS.map((r) => [r, []]));
    let failures = 0;
    let stop = false;
    const oldMaster = await masterPort();
    expect(oldMaster).toBe(cluster().redis.port);

    // One pusher per repository, each pushing a new branch per attempt; a repository's
    // pushes are serial, so what the test reads after an acknowledgement is that push's state.
    const pusher = async (repo: string): Promise<void> => {
      const git = GitClient.forCluster(cluster());
      const work = await git.init(repo.replace('/', '-'));
      for (let i = 1; !stop; i++) {
        const sha = await git.commit(work, { [`f${i}.txt`]: `${repo} ${i}\n` }, `push ${i}`);
        const branch = `p${i}`;
        const r = await git.push(work, githa.url(repo), [`HEAD:refs/heads/${branch}`], [], { allowFailure: true, timeoutMs: 30_000 });
        if (r.code !== 0) {
          failures++;
          await new Promise((res) => setTimeout(res, 200));
          continue;
        }
        acked.push({ repo, branch, sha });
        const v = await maxVersion(repo).catch(() => undefined);
        if (v !== undefined) seen.get(repo)!.push(v);
      }
    };
    const acks = (repo: string): number => acked.filter((a) => a.repo === repo).length;
    const workers = REPOS.map((r) => pusher(r));
    try {
      await waitFor('three acknowledged pushes per repository', () => REPOS.every((r) => acks(r) >= 3), 30_000);
      const before = new Map(REPOS.map((r) => [r, acks(r)]));
      await cluster().redis.stop('SIGKILL');
      const promoted = await waitFor('a sentinel failover', async () => {
        const p = await masterPort();
        return p !== oldMaster ? p : false;
      }, 30_000);
      expect(replicas.map((r) => r.port)).toContain(promoted);
      // After the failover, pushes are acknowledged again (WAIT 1: the other replica now follows the new master).
      await waitFor('three more acknowledged pushes per repository after the failover', () => REPOS.every((r) => acks(r) >= before.get(r)! + 3), 40_000);
    } finally {
      stop = true;
      await Promise.all(workers);
    }

    // Every acknowledged push: its branch through githa, and its own push-log entry on the new master.
    for (const repo of REPOS) {
      const git = GitClient.forCluster(cluster());
      const refs = await git.lsRemote(githa.url(repo));
      const log = (await state.xrange(`githa:repo:{${repo}.git}:log`, '-', '+')).map(([, f]) => {
        const o: Record<string, string> = {};
        for (let i = 0; i + 1 < f.length; i += 2) o[f[i]!] = f[i + 1]!;
        return o;
      });
      const mine = acked.filter((a) => a.repo === repo);
      for (const a of mine) {
        expect(refs[`refs/heads/${a.branch}`], `${repo} ${a.branch}`).toBe(a.sha);
        expect(log.some((e) => e.event === 'push' && (e.refs ?? '').includes(`${a.sha} refs/heads/${a.branch}`)), `push-log entry of ${repo} ${a.branch}`).toBe(true);
      }
      // Versions never went back: each reading after an acknowledgement is at least the one before, and the final one at least all.
      const readings = seen.get(repo)!;
      expect(readings).toEqual([...readings].sort((x, y) => x - y));
      const final = await maxVersion(repo);
      expect(final).toBeGreaterThanOrEqual(Math.max(...readings));
      expect(final).toBeGreaterThanOrEqual(mine.length);
    }
    expect(githa.logs()).not.toContain('STATE REGRESSION');
    expect(acked.length).toBeGreaterThanOrEqual(12);
    // githa waited for a replica: the promoted master got every acknowledged change before the kill.
    expect(failures, 'pushes refused during the failover').toBeLessThan(200);
  });
});
