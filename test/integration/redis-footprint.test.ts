/**
 * What githa costs Redis (docs/deploy.md "Redis Cluster", "How much one Redis
 * carries"), on one redis-server and on a 3-master Redis Cluster, through
 * real githa and git over HTTP:
 *
 * - memory per repository: the MEMORY USAGE of every key of a repository
 *   after it was created by a push (createOnPush) and pushed once more, and
 *   the growth of used_memory over all masters divided by the repositories
 *   (that includes githa:repos and the githa:events entries);
 * - Redis work per push: the INFO commandstats calls and the INFO cpu seconds
 *   (user + sys, every master) of PUSHES pushes to existing repositories,
 *   replication included, minus an idle window as long.
 *
 * It prints the figures (the command and its output are in docs/deploy.md)
 * and holds them under generous bounds, so a change that multiplies them
 * fails here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Keys } from '../../src/state/keys.js';
import { connectRedis, redisReady, type RedisClient } from '../../src/state/redis.js';
import { LOCALHOST } from '../../src/demo/process.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { waitFor } from '../support/state.js';

const REPOS = 6;
const PUSHES = 12;
const cluster = useCluster({ backends: 3, restoreAfterEach: false });
const keys = new Keys('githa:');
let rc: TestRedisCluster;

beforeAll(async () => {
  rc = await startRedisCluster(cluster());
});
afterAll(async () => {
  await rc?.stop();
});

interface Figures {
  keyBytesPerRepo: number;
  usedMemoryPerRepo: number;
  callsPerPush: number;
  scriptsPerPush: number;
  redisCpuMsPerPush: number;
  byCommand: Record<string, number>;
}

/** Sum of INFO fields over the masters. */
async function info(masters: Redis[]): Promise<{ used: number; cpu: number; calls: Map<string, number> }> {
  let used = 0;
  let cpu = 0;
  const calls = new Map<string, number>();
  for (const m of masters) {
    const text = await m.info('everything');
    used += Number(/used_memory:(\d+)/.exec(text)![1]);
    cpu += Number(/used_cpu_user:([\d.]+)/.exec(text)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(text)![1]);
    for (const [, cmd, n] of text.matchAll(/cmdstat_([a-z|_-]+):calls=(\d+)/g)) calls.set(cmd!, (calls.get(cmd!) ?? 0) + Number(n));
  }
  return { used, cpu, calls };
}

const delta = (a: Map<string, number>, b: Map<string, number>): Map<string, number> =>
  new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as [string, number]).filter(([, v]) => v > 0));

async function measure(g: GithaProcess, state: RedisClient, masters: Redis[], tag: string): Promise<Figures> {
  const c = cluster();
  const git = GitClient.forCluster(c, { knownHostsPath: g.knownHostsPath });
  const names = Array.from({ length: REPOS }, (_, i) => `fp-${tag}/r${i}`);
  const work = await git.init();
  await git.commit(work, { 'a.txt': 'a\n' }, 'first');
  // Every copy caught up (the third by background replication): the work of the pushes is all in the window.
  const settled = async (): Promise<void> => {
    for (const n of names) {
      await waitFor(`${n} on every backend`, async () => {
        const v = Object.values(await state.hgetall(keys.versions(`${n}.git`)));
        return v.length === 3 && new Set(v).size === 1;
      }, 20_000);
    }
  };
  const before = await info(masters);
  // Created by the push (over SSH: githa knows the pusher, docs/operations.md "Repository lifecycle"), then pushed once more.
  for (const n of names) await git.push(work, g.sshUrl(n), ['HEAD:refs/heads/main']);
  await git.commit(work, { 'b.txt': 'b\n' }, 'second');
  for (const n of names) await git.push(work, g.url(n), ['HEAD:refs/heads/main']);
  await settled();
  const created = await info(masters);
  // Every key of one repository, wherever its slot is: MEMORY USAGE on its master.
  let keyBytes = 0;
  for (const n of names) {
    const r = `${n}.git`;
    for (const k of [keys.versions(r), keys.checksums(r), keys.meta(r), keys.log(r), keys.assigned(r)]) {
      for (const m of masters) keyBytes += Number((await m.memory('USAGE', k, 'SAMPLES', '0').catch(() => 0)) ?? 0);
    }
  }
  // PUSHES pushes to existing repositories (round robin), then an idle window as long.
  const t0 = Date.now();
  const p0 = await info(masters);
  for (let i = 0; i < PUSHES; i++) {
    await git.commit(work, { 'c.txt': `${i}\n` }, `push ${i}`);
    await git.push(work, g.url(names[i % REPOS]!), ['HEAD:refs/heads/main']);
  }
  await settled();
  const p1 = await info(masters);
  const window = Date.now() - t0;
  const i0 = await info(masters);
  await new Promise((r) => setTimeout(r, window));
  const i1 = await info(masters);
  const pushCalls = delta(p0.calls, p1.calls);
  const idleCalls = delta(i0.calls, i1.calls);
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const byCommand: Record<string, number> = {};
  for (const [k, v] of pushCalls) byCommand[k] = Math.round(((v - (idleCalls.get(k) ?? 0)) / PUSHES) * 10) / 10;
  return {
    keyBytesPerRepo: Math.round(keyBytes / REPOS),
    usedMemoryPerRepo: Math.round((created.used - before.used) / REPOS),
    callsPerPush: Math.round(((sum(pushCalls) - sum(idleCalls)) / PUSHES) * 10) / 10,
    scriptsPerPush: Math.round((((pushCalls.get('evalsha') ?? 0) - (idleCalls.get('evalsha') ?? 0)) / PUSHES) * 10) / 10,
    redisCpuMsPerPush: Math.round((((p1.cpu - p0.cpu) - (i1.cpu - i0.cpu)) / PUSHES) * 1000 * 100) / 100,
    byCommand,
  };
}

describe('Redis footprint of githa', () => {
  it('memory per repository and Redis work per push, one Redis and a 3-master Redis Cluster', async () => {
    const c = cluster();
    const common = { ssh: true, admin: true as const, config: { repositories: { createOnPush: true }, verify: { intervalMs: 0 } } };
    const single = await startGitha(c, { ...common, config: { ...common.config, redis: { url: c.redis.url } } });
    const one = new Redis({ host: LOCALHOST, port: c.redis.port });
    one.on('error', () => {});
    const alone = await measure(single, one, [one], 'single');
    console.log(`one Redis: ${JSON.stringify(alone)}`);
    one.disconnect();
    await single.stop();

    const onCluster = await startGitha(c, { ...common, config: { ...common.config, redis: { cluster: rc.seeds, waitReplicas: 0, acceptFailoverLoss: true } } });
    const masters = rc.nodes.map((n) => rc.node(n.port));
    const state = connectRedis({ cluster: rc.seeds }, { commandTimeoutMs: 5_000 });
    expect(await redisReady(state, 10_000)).toBe(true);
    const spread = await measure(onCluster, state, masters, 'cluster');
    console.log(`Redis Cluster: ${JSON.stringify(spread)}`);
    state.disconnect();
    await onCluster.stop();

    console.log(`redis footprint (${REPOS} repositories created by a push and pushed once more; ${PUSHES} pushes):\n` + JSON.stringify({ oneRedis: alone, cluster: spread }, null, 2));
    for (const f of [alone, spread]) {
      expect(f.keyBytesPerRepo).toBeGreaterThan(0);
      expect(f.keyBytesPerRepo).toBeLessThan(20_000);
      expect(f.callsPerPush).toBeGreaterThan(0);
      expect(f.callsPerPush).toBeLessThan(200);
    }
  }, 600_000);
});
