/**
 * githa's state on a real Redis Cluster (config `redis.cluster`; docs/deploy.md
 * "Redis Cluster", docs/redis.md "On Redis Cluster"): three masters on
 * 127.0.0.1 (test/support/redis-cluster.ts), three real backends, githa as a
 * real process, clients using real git over HTTP and SSH. Every key of a
 * repository is in its hash-tag slot, so each repository's state lives on one
 * master, and the repositories spread over all three; the keys shared by
 * every repository (githa:repos, githa:events and its consumer group, the
 * backends' hashes, the pub/sub channels) work from whichever master holds them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keys } from '../../src/state/keys.js';
import { replicated } from '../../src/state/redis-call.js';
import { connectRedis, redisReady, type RedisClient } from '../../src/state/redis.js';
import { Tombstones } from '../../src/state/tombstones.js';
import { githaCli, githaJson } from '../cli/run.js';
import { diskRefs } from '../support/backend-refs.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { waitFor } from '../support/state.js';

const cluster = useCluster({ backends: 3, restoreAfterEach: false });
const keys = new Keys('githa:');
let rc: TestRedisCluster;
let state: RedisClient;

/** githa's `redis` section for the test cluster: no replicas, so nothing to WAIT for. */
const redisConfig = (): Record<string, unknown> => ({ cluster: rc.seeds, waitReplicas: 0, acceptFailoverLoss: true, commandTimeoutMs: 3_000 });

beforeAll(async () => {
  rc = await startRedisCluster(cluster());
  state = connectRedis({ cluster: rc.seeds }, { commandTimeoutMs: 5_000 });
  expect(await redisReady(state, 10_000)).toBe(true);
});

afterAll(async () => {
  state?.disconnect();
  await rc?.stop();
});

const versions = async (repo: string): Promise<Record<string, string>> => state.hgetall(keys.versions(`${repo}.git`));

/** The ports of the masters that hold `repo`'s keys (one, if the hash tag does its job): each asked directly, not through the cluster client. */
async function holders(repo: string): Promise<Set<number>> {
  const r = `${repo}.git`;
  const out = new Set<number>();
  for (const key of [keys.versions(r), keys.checksums(r), keys.meta(r), keys.log(r)]) {
    const port = await rc.masterOf(key);
    expect(await rc.node(port).exists(key), `${key} on ${port}`).toBe(1);
    out.add(port);
  }
  return out;
}

describe('githa on a Redis Cluster', () => {
  // rc/a, rc/c and rc/b hash to the slots of the first, second and third master (slots 5114, 6009, 15656).
  const REPOS = ['rc/a', 'rc/c', 'rc/b'];
  let g: GithaProcess;

  it('creates, pushes and clones over HTTP and SSH; each repository on one master, all three used; status, log and the tombstone SCAN read it', async () => {
    const c = cluster();
    g = await startGitha(c, { ssh: true, admin: true, keep: true, config: { redis: redisConfig() } });
    const git = GitClient.forCluster(c, { knownHostsPath: g.knownHostsPath });
    const want = new Map<string, Record<string, string>>();
    for (const [i, repo] of REPOS.entries()) {
      const created = await githaCli(g.configPath, ['create', repo, '--json']);
      expect(created.code, created.stderr).toBe(0);
      const work = await git.init();
      const sha = await git.commit(work, { 'f.txt': `${repo}\n` }, repo);
      const url = i % 2 === 0 ? g.url(repo) : g.sshUrl(repo);
      await git.push(work, url, ['HEAD:refs/heads/main']);
      want.set(repo, { 'refs/heads/main': sha });
      for (const read of [g.url(repo), g.sshUrl(repo)]) expect(await git.forEachRef(await git.clone(read, ['--mirror']))).toEqual(want.get(repo));
      expect(Object.values(await versions(repo))).toEqual(['2', '2', '2']);
    }

    // One master per repository, and the three repositories on three different masters.
    const masters = new Set<number>();
    for (const repo of REPOS) {
      const on = await holders(repo);
      expect(on.size, `${repo}'s keys on ${[...on].join(', ')}`).toBe(1);
      masters.add([...on][0]!);
    }
    expect(masters).toEqual(new Set(rc.nodes.map((n) => n.port)));
    // The index of repositories, on whichever master holds githa:repos.
    expect((await state.zrange(keys.repos(), '0', '-1')).sort()).toEqual(REPOS.map((r) => `${r}.git`).sort());

    const status = await githaJson(g.configPath, ['status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.data.backends.map((b) => b.id)).toEqual(['b1', 'b2', 'b3']);
    const log = await githaJson(g.configPath, ['log', 'rc/b']);
    expect(log.code, log.stderr).toBe(0);
    expect(log.data.map((e) => e.event)).toEqual(expect.arrayContaining(['create', 'push']));

    // A tombstone is found by a SCAN of every master (githa inventory, recover).
    const deleted = await githaCli(g.configPath, ['delete', 'rc/b']);
    expect(deleted.code, deleted.stderr).toBe(0);
    const found = await new Tombstones(state, keys).all();
    expect([...found.keys()]).toEqual(['rc/b.git']);
    expect(found.get('rc/b.git')?.kind).toBe('deleted');
    // Nine git runs and five CLI processes: a minute on a loaded machine.
  }, 180_000);

  it('catches a stale backend up through the githa:events consumer group', async () => {
    const c = cluster();
    // One copy per push: the other two backends are stale until the replicator (XREADGROUP on githa:events) catches them up.
    const single = await startGitha(c, { config: { redis: redisConfig(), replication: { writeQuorum: 1 } } });
    const git = GitClient.forCluster(c);
    const work = await git.clone(single.url('rc/a'));
    const sha = await git.commit(work, { 'g.txt': 'stale\n' }, 'one copy');
    await git.push(work, single.url('rc/a'), ['HEAD:refs/heads/main']);
    await waitFor('every backend at version 3', async () => Object.values(await versions('rc/a')).every((v) => v === '3'), 20_000);
    for (const b of c.backends) expect((await diskRefs(b, 'rc/a.git'))['refs/heads/main']).toBe(sha);
    const entries = await githaJson(single.configPath, ['log', 'rc/a']);
    const pushed = entries.data.find((e) => e.event === 'push' && e.version === '3')!.backend;
    const caughtUp = entries.data.filter((e) => e.event === 'catch-up' && e.version === '3').map((e) => e.backend);
    expect(caughtUp.sort()).toEqual(['b1', 'b2', 'b3'].filter((b) => b !== pushed));
    await single.stop();
  });

  it('follows MOVED after a repository\'s slot is moved to another master', async () => {
    const c = cluster();
    const git = GitClient.forCluster(c, { knownHostsPath: g.knownHostsPath });
    const key = keys.versions('rc/c.git');
    const from = await rc.masterOf(key);
    const to = rc.nodes.map((n) => n.port).find((p) => p !== from)!;
    await rc.moveSlotOf(key, to);
    expect(await rc.masterOf(key)).toBe(to);
    // The running githa still maps the slot to the old master: its first command there is answered MOVED.
    const work = await git.clone(g.url('rc/c'));
    const sha = await git.commit(work, { 'h.txt': 'moved\n' }, 'after the move');
    await git.push(work, g.sshUrl('rc/c'), ['HEAD:refs/heads/main']);
    expect(await git.forEachRef(await git.clone(g.url('rc/c'), ['--mirror']))).toEqual({ 'refs/heads/main': sha });
    expect(Object.values(await versions('rc/c'))).toEqual(['3', '3', '3']);
    expect(await rc.node(to).exists(key)).toBe(1);
    await g.stop();
  });

  it('sends WAIT to the master of the key just written: its replicas count, another master\'s do not', async () => {
    // Keys outside githa's prefix, in the slots of rc/a and rc/b (two different masters).
    const [withReplica, without] = ['test-wait:{rc/a.git}', 'test-wait:{rc/b.git}'];
    const [m1, m2] = [await rc.masterOf(withReplica), await rc.masterOf(without)];
    expect(m1).not.toBe(m2);
    await rc.addReplica(m1);
    const durable = { replicas: 1, timeoutMs: 500 };
    // Several rounds: a WAIT sent to a random node would pass both checks only by luck, each time.
    for (let i = 0; i < 4; i++) {
      await state.set(withReplica, String(i));
      await replicated(state, durable, withReplica);
      await state.set(without, String(i));
      await expect(replicated(state, durable, without)).rejects.toThrow('0 of the 1 Redis replica(s) required');
    }
  });
});
