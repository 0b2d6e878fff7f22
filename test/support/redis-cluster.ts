/**
 * A real Redis Cluster on 127.0.0.1 for githa's state (config `redis.cluster`,
 * docs/deploy.md "Redis Cluster"): `masters` redis-server processes with
 * `--cluster-enabled yes`, each in a directory of its own under the dev
 * cluster's, joined with `redis-cli --cluster create … --cluster-replicas 0`
 * (https://redis.io/docs/latest/operate/oss_and_stack/management/scaling/).
 * The servers are PortServers tracked by the dev cluster, so its watchdog
 * kills them too should the test process die.
 *
 *   const rc = await startRedisCluster(cluster());
 *   rc.seeds;                          // ["127.0.0.1:P1", …] for redis.cluster
 *   await rc.masterOf('githa:repos');  // the port of the master holding a key
 *   await rc.stop();
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { LOCALHOST, PortServer, exchange, minimalEnv, pickFreePort, type PidTracker } from '../../src/demo/process.js';
import type { DevCluster } from '../../src/demo/cluster.js';
import { waitFor } from './wait.js';

export interface TestRedisCluster {
  readonly nodes: readonly PortServer[];
  /** "127.0.0.1:port" of every master: githa's `redis.cluster`. */
  readonly seeds: string[];
  /** A plain connection to one node (CLUSTER …, INFO, MEMORY USAGE, SCAN of that node). */
  node(port: number): Redis;
  /** The port of the master that serves `key`'s slot now. */
  masterOf(key: string): Promise<number>;
  /** Starts one more node as a replica of the master on `masterPort` (`redis-cli --cluster add-node … --cluster-slave`); resolves once the master counts it. */
  addReplica(masterPort: number): Promise<PortServer>;
  /** Moves the slot of `key` (and its keys) to the master on `toPort`, as `redis-cli --cluster reshard` does for one slot. */
  moveSlotOf(key: string, toPort: number): Promise<void>;
  stop(): Promise<void>;
}

const pingProbe = async (port: number): Promise<boolean> => (await exchange(port, 'PING\r\n', 1000))?.startsWith('+PONG') ?? false;

function run(command: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: minimalEnv(), timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

export async function startRedisCluster(cluster: DevCluster, masters = 3): Promise<TestRedisCluster> {
  const untrack = new Map<number, () => void>();
  const tracker: PidTracker = { add: (pid) => void untrack.set(pid, cluster.track(pid)), remove: (pid) => untrack.get(pid)?.() };
  const nodes: PortServer[] = [];
  const clients = new Map<number, Redis>();
  const server = (i: number): PortServer => {
    const dir = join(cluster.dir, `redis-cluster-${process.pid}-${i}`);
    mkdirSync(dir, { recursive: true });
    return new PortServer({
      name: `redis-cluster${i}`,
      logFile: join(dir, 'redis.log'),
      tracker,
      build: async (port) => ({
        command: 'redis-server',
        // The bus port is picked apart: port + 10000 (Redis's default) may be taken or above 65535.
        // prettier-ignore
        args: ['--port', String(port), '--bind', LOCALHOST, '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', dir,
          '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-port', String(await pickFreePort()),
          '--cluster-node-timeout', '5000'],
        env: minimalEnv(),
        cwd: dir,
      }),
      probe: pingProbe,
    });
  };
  for (let i = 1; i <= masters; i++) nodes.push(server(i));
  const replicas: PortServer[] = [];
  const stop = async (): Promise<void> => {
    for (const c of clients.values()) c.disconnect();
    clients.clear();
    await Promise.all([...nodes, ...replicas].map((n) => n.stop('SIGKILL')));
  };
  const node = (port: number): Redis => {
    let c = clients.get(port);
    if (!c) {
      c = new Redis({ host: LOCALHOST, port, maxRetriesPerRequest: 1 });
      c.on('error', () => {});
      clients.set(port, c);
    }
    return c;
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    const seeds = nodes.map((n) => `${LOCALHOST}:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...seeds, '--cluster-replicas', '0', '--cluster-yes']);
    await waitFor(
      'every node of the Redis Cluster to report cluster_state:ok with every slot assigned',
      async () => {
        for (const n of nodes) {
          const info = String(await node(n.port).cluster('INFO'));
          if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_assigned:16384') || !info.includes(`cluster_known_nodes:${masters}`)) return false;
        }
        return true;
      },
      30_000,
    );
    const nodeId = async (port: number): Promise<string> => String(await node(port).cluster('MYID'));
    const masterOf = async (key: string): Promise<number> => {
      const slot = Number(await node(nodes[0]!.port).cluster('KEYSLOT', key));
      const ranges = await node(nodes[0]!.port).cluster('SLOTS');
      const master = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
      if (!master) throw new Error(`no node serves slot ${slot}`);
      return Number(master[1]);
    };
    return {
      nodes,
      seeds,
      node,
      masterOf,
      async addReplica(masterPort) {
        const replica = server(masters + replicas.length + 1);
        replicas.push(replica);
        await replica.start();
        // prettier-ignore
        await run('redis-cli', ['--cluster', 'add-node', `${LOCALHOST}:${replica.port}`, `${LOCALHOST}:${masterPort}`,
          '--cluster-slave', '--cluster-master-id', await nodeId(masterPort)]);
        await waitFor(
          `the master on ${masterPort} to count its replica as online`,
          async () => /slave0:.*state=online/.test(await node(masterPort).info('replication')),
          30_000,
        );
        return replica;
      },
      async moveSlotOf(key, toPort) {
        const fromPort = await masterOf(key);
        if (fromPort === toPort) return;
        const slot = Number(await node(fromPort).cluster('KEYSLOT', key));
        const [from, to] = [node(fromPort), node(toPort)];
        const [fromId, toId] = [await nodeId(fromPort), await nodeId(toPort)];
        // The live migration of one slot (https://redis.io/commands/cluster-setslot/): importing, migrating, MIGRATE, then NODE everywhere.
        await to.cluster('SETSLOT', slot, 'IMPORTING', fromId);
        await from.cluster('SETSLOT', slot, 'MIGRATING', toId);
        for (;;) {
          const keys = (await from.cluster('GETKEYSINSLOT', slot, 100)) as string[];
          if (keys.length === 0) break;
          await from.call('MIGRATE', LOCALHOST, String(toPort), '', '0', '5000', 'KEYS', ...keys);
        }
        for (const n of nodes) await node(n.port).cluster('SETSLOT', slot, 'NODE', toId);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
