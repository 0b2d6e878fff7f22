/**
 * The chaos harness (issue 8; docs/chaos.md): Redis with AOF, three (or up
 * to five, with a replication factor and moves: issue 22) stock backends
 * reached over mixed transports, two or three githa processes,
 * concurrent clients and randomly scheduled faults for a bounded time; then
 * everything is healed, the run waits for quiescence, and the checker judges
 * the recorded history and the final state. Everything listens on 127.0.0.1.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startDevCluster, type DevCluster } from '../../src/demo/cluster.js';
import { run } from '../../src/demo/process.js';
import { generateKey, knownHostsLine } from '../../src/demo/ssh.js';
import { KNOWN_ISSUES, checkHistory, type Violation } from './checker.js';
import { startDelayRelay, type DelayRelay } from './delay-relay.js';
import { LEASE_MS, PAIR_LOCK_MS, githaConfig } from './cluster-config.js';
import { COPY_FAULTS, refsReaching } from './copy-faults.js';
import { healAll, runFaults } from './faults.js';
import { Git } from './git.js';
import { GithaProc } from './githa-proc.js';
import { HistoryRecorder, type DivergentCommit, type FaultKind, type FinalRepoState, type FinalState, type History } from './history.js';
import { assignedOf, githaCli, runMoves } from './moves.js';
import { Rng } from './rng.js';
import { Client, type Transport } from './workload.js';

/** Faults that stop a process or slow Redis (issue 8). */
export const OUTAGE_FAULTS: readonly FaultKind[] = ['backend-kill', 'backend-pause', 'backend-unreachable', 'githa-pause', 'githa-kill-mid-push', 'redis-restart', 'redis-slow'];
export { COPY_FAULTS };
export const ALL_FAULTS: readonly FaultKind[] = [...OUTAGE_FAULTS, ...COPY_FAULTS];

export interface ChaosOptions {
  seed: number;
  durationMs: number;
  githas?: number;
  writers?: number;
  readers?: number;
  repos?: number;
  /** Keep the temporary directory even without a violation. */
  keep?: boolean;
  faults?: readonly FaultKind[];
  faultGapMs?: readonly [number, number];
  pushTransports?: readonly Transport[];
  readAfterPush?: number;
  /**
   * Self-test: run the deliberately broken githa (githa-ack-before-commit.ts:
   * it acknowledges before it commits), and after each acknowledged push pause
   * the githa that acknowledged it while a read goes through another.
   */
  ackBeforeCommit?: boolean;
  convergeTimeoutMs?: number;
  /** replication.fanOut of every githa (default true, the product's default). */
  fanOut?: boolean;
  /** Stock backends (default 3; 3 to 5). */
  backends?: number;
  /** replication.factor (default: none, every backend holds every repository); repositories are then made with `githa create`. */
  factor?: number;
  /** Run `githa move` (and now and then `githa rebalance --max-moves 1`) during the run (moves.ts; needs `factor`). */
  moves?: boolean;
  /** Pause between two moves (default 2–6 s). */
  moveGapMs?: readonly [number, number];
  /** Progress lines (the CLI prints them to stderr). */
  progress?: (line: string) => void;
}

export interface ChaosResult {
  seed: number;
  history: History;
  violations: Violation[];
  /** Findings of a kind in KNOWN_ISSUES (reported, not counted as violations). */
  known: Violation[];
  /** The temporary directory, when kept (a violation, or `keep`). */
  keptDir?: string;
  durationMs: number;
  /** replication.fanOut of the run, and the pushes the githas' logs show committed (with fan-out copies made: `fanOut`). */
  writes?: { fanOut: boolean; committed: number; fannedOut: number };
}

const PREFIX = 'githa:';

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const progress = options.progress ?? (() => {});
  const rng = new Rng(options.seed);
  const dir = mkdtempSync(join(tmpdir(), 'githa-chaos-'));
  const started = performance.now();
  const backendCount = options.backends ?? 3;
  if (options.moves && options.factor === undefined) throw new Error('moves need a replication factor (a copy moves to a backend not assigned)');
  if (options.factor !== undefined && !(options.factor >= 2 && options.factor <= backendCount)) throw new Error(`factor ${options.factor}: 2 to ${backendCount} (writeQuorum is 2)`);
  const cluster = await startDevCluster({ backends: backendCount, dir, redisAof: true, maxLifetimeMs: options.durationMs + 15 * 60_000 });
  const githas: GithaProc[] = [];
  const relays: DelayRelay[] = [];
  const redis = new Redis(cluster.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => 200, commandTimeout: 2_000 });
  redis.on('error', () => {});
  // The dev cluster starts Redis with `appendfsync always` when AOF is on, so a Redis killed with
  // SIGKILL loses no acknowledged version; this checks that it really is so after every restart.
  const afterRedisStart = async (): Promise<void> => {
    const fsync = (await cluster.redis.cli('CONFIG', 'GET', 'appendfsync')).split('\n')[1];
    if (fsync !== 'always') throw new Error(`Redis runs with appendfsync ${fsync}, not always: a SIGKILL could lose acknowledged versions`);
  };
  let history: History | undefined;
  // Assigned at the end of the try block; the catch block rethrows.
  let violations: Violation[];
  let known: Violation[];
  try {
    await afterRedisStart();
    await redis.connect();
    const repos = Array.from({ length: options.repos ?? 2 }, (_, i) => `chaos/r${i + 1}.git`);
    const hostKey = join(dir, 'githa_host_ed25519_key');
    await generateKey(hostKey, 'githa-chaos-host');
    const authorizedKeys = join(dir, 'githa_authorized_keys');
    writeFileSync(authorizedKeys, `environment="GITHA_USER=chaos" ${cluster.ssh.clientPublicKey.trim()}\n`);
    const fanOut = options.fanOut ?? true;
    const base = { hostKey, authorizedKeys, fanOut, factor: options.factor };
    // The operator's CLI (`githa create`, `githa move`) reaches Redis directly, not through a githa's relay.
    const cliConfig = join(dir, 'cli.json');
    writeFileSync(cliConfig, JSON.stringify(githaConfig(cluster, { ...base, name: 'chaos-cli', redisUrl: cluster.redis.url }), null, 2));
    if (options.factor === undefined) for (const repo of repos) await cluster.createRepository(repo);
    else {
      // Placement chooses each repository's backends (replication.factor), as for an operator's `githa create`.
      for (const repo of repos) {
        const r = await githaCli(cliConfig, ['create', repo, '--as', 'chaos'], 60_000);
        if (r.code !== 0) throw new Error(`githa create ${repo}: exit ${r.code}: ${r.stderr.slice(-1000)}`);
      }
    }
    const backendIds = cluster.backends.map((b) => b.id);
    const assigned = (repo: string): Promise<string[] | undefined> => assignedOf(redis, repo, backendIds);
    const busy = new Set<string>();
    const env: NodeJS.ProcessEnv = { ...process.env, GITHA_CONFIG: '' };
    const count = options.githas ?? 3;
    // Each githa reaches Redis through a relay of its own, so the "slow Redis replies" fault can hold that githa's replies alone.
    for (let i = 0; i < count; i++) relays.push(await startDelayRelay(cluster.redis.port));
    for (let i = 0; i < count; i++) {
      const config = githaConfig(cluster, { ...base, name: `g${i + 1}`, redisUrl: `redis://127.0.0.1:${relays[i]!.port}` });
      githas.push(new GithaProc(i, `g${i + 1}`, cluster, config, env, options.ackBeforeCommit === true));
    }
    await Promise.all(githas.map((g) => g.start()));
    const hostPub = readFileSync(`${hostKey}.pub`, 'utf8');
    const knownHostsPath = join(dir, 'clients_known_hosts');
    writeFileSync(knownHostsPath, githas.map((g) => `${knownHostsLine(g.ports.ssh, hostPub)}\n`).join(''));
    const factorWords = options.factor === undefined ? '' : `, factor ${options.factor}${options.moves ? ', moves' : ''}`;
    progress(`chaos: seed ${options.seed}, ${count} githa, ${backendCount} backends${factorWords}, redis AOF; temp dir ${dir}`);

    const rec = new HistoryRecorder();
    const deadline = rec.now() + options.durationMs;
    const ctx = {
      rec,
      githas,
      repos,
      sharedBranches: 2,
      pushTransports: options.pushTransports ?? (['http', 'ssh'] as const),
      readTransports: ['http', 'ssh'] as const,
      readAfterPush: options.readAfterPush ?? 0.5,
      pauseAckingGitha: options.ackBeforeCommit === true,
      pauseTurn: { last: Promise.resolve() },
      gitTimeoutMs: 30_000,
      deadline,
    };
    const clientsDir = join(dir, 'clients');
    mkdirSync(clientsDir, { recursive: true });
    const makeClient = (name: string, salt: number): Client => {
      const home = join(clientsDir, name);
      return new Client(name, ctx, new Git(home, { keyPath: cluster.ssh.clientKeyPath, knownHostsPath }), rng.fork(salt), home);
    };
    const writers = Array.from({ length: options.writers ?? 4 }, (_, i) => makeClient(`w${i + 1}`, i));
    const readers = Array.from({ length: options.readers ?? 2 }, (_, i) => makeClient(`r${i + 1}`, 100 + i));
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sampleVersions(redis, rec, repos);
        await sleep(250);
      }
    })();
    const ticker = setInterval(() => progress(`chaos: ${Math.round(rec.now() / 1000)} s, ${rec.ops.length} operations, ${rec.faults.length} faults`), 10_000);
    try {
      await Promise.all([
        ...writers.map((c, i) => c.runWriter(i + 1)),
        ...readers.map((c) => c.runReader()),
        runFaults({
          cluster,
          githas,
          rec,
          rng: rng.fork(1000),
          deadline,
          leaseMs: LEASE_MS,
          pairLockMs: PAIR_LOCK_MS,
          redisRelays: relays,
          kinds: options.faults ?? ALL_FAULTS,
          repos,
          gapMs: options.faultGapMs ?? [1_000, 3_000],
          afterRedisStart,
          settled: (repo) => settled(redis, repo, backendIds),
          assigned,
          busy,
        }),
        ...(options.moves
          ? [runMoves({ backends: cluster.backends, repos, rec, rng: rng.fork(2000), redis, deadline, configPath: cliConfig, gapMs: options.moveGapMs ?? [2_000, 6_000], busy })]
          : []),
      ]);
    } finally {
      clearInterval(ticker);
    }
    progress(`chaos: workload done after ${Math.round(rec.now() / 1000)} s; healing and waiting for quiescence`);
    await healAll(cluster, githas, afterRedisStart, relays);
    const quiet = await quiesce(cluster, redis, repos, options.convergeTimeoutMs ?? 60_000, rec.divergent);
    const final = { ...quiet, ...(options.factor !== undefined ? { factor: options.factor } : {}) };
    sampling = false;
    await sampler;
    await sampleVersions(redis, rec, repos);
    history = rec.history(final);
    const found = checkHistory(history);
    violations = found.filter((v) => !KNOWN_ISSUES.has(v.kind));
    known = found.filter((v) => KNOWN_ISSUES.has(v.kind));
  } catch (err) {
    if (err instanceof Error) err.message += ` (the chaos harness failed; temp dir kept: ${dir})`;
    throw err;
  } finally {
    redis.disconnect();
    await Promise.allSettled(githas.map((g) => g.stop()));
    await Promise.allSettled(relays.map((r) => r.close()));
    await cluster.stop();
  }
  const writes = { fanOut: options.fanOut ?? true, ...countCommits(dir, options.githas ?? 3) };
  const keep = options.keep === true || violations.length > 0 || history === undefined;
  if (keep) writeFileSync(join(dir, 'history.json'), JSON.stringify({ seed: options.seed, violations, known, history }, null, 1));
  else rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  return { seed: options.seed, history: history!, violations, known, ...(keep ? { keptDir: dir } : {}), durationMs: performance.now() - started, writes };
}

/**
 * Whether githa has repaired `repo` since the last copy fault: every
 * assigned backend at the highest version, no drift, no marker. A copy fault hits only such a
 * repository: a second one before the first is repaired is a double failure,
 * beyond what a write quorum of 2 survives (docs/chaos.md "Copy faults").
 */
async function settled(redis: Redis, repo: string, backends: readonly string[]): Promise<boolean> {
  try {
    const [versions, drift, writing, assigned] = await Promise.all([
      redis.hgetall(`${PREFIX}repo:{${repo}}:versions`),
      redis.hlen(`${PREFIX}repo:{${repo}}:drift`),
      redis.exists(`${PREFIX}repo:{${repo}}:writing`),
      assignedOf(redis, repo, backends),
    ]);
    if (!assigned) return false;
    const v = assigned.map((b) => versions[b]);
    return v.every((x) => x !== undefined) && new Set(v).size === 1 && drift === 0 && writing === 0;
  } catch {
    return false;
  }
}

async function sampleVersions(redis: Redis, rec: HistoryRecorder, repos: readonly string[]): Promise<void> {
  for (const repo of repos) {
    try {
      const [versions, epoch] = await Promise.all([redis.hgetall(`${PREFIX}repo:{${repo}}:versions`), redis.hget(`${PREFIX}repo:{${repo}}:meta`, 'epoch')]);
      if (Object.keys(versions).length === 0) continue;
      rec.sample({ t: rec.now(), repo, versions: Object.fromEntries(Object.entries(versions).map(([b, v]) => [b, Number(v)])), epoch: epoch ?? '' });
    } catch {
      // Redis restarting: no sample.
    }
  }
}

/** Polls until every repository is quiescent (equal versions, no marker, no freeze, equal refs), or the timeout. */
async function quiesce(cluster: DevCluster, redis: Redis, repos: readonly string[], timeoutMs: number, divergent: readonly DivergentCommit[]): Promise<FinalState> {
  const t0 = performance.now();
  let converged = false;
  while (performance.now() - t0 < timeoutMs) {
    const states = await finalStates(cluster, redis, repos, false);
    converged = Object.values(states).every((s) => {
      const versions = new Set(Object.values(s.versions));
      return versions.size === 1 && Object.keys(s.versions).length === (s.assigned?.length ?? cluster.backends.length) && !s.frozen && !s.writing && new Set(Object.values(s.refs)).size === 1;
    });
    if (converged) break;
    await sleep(300);
  }
  const convergenceMs = performance.now() - t0;
  const repoStates = await finalStates(cluster, redis, repos, true);
  for (const repo of repos) {
    const mine = divergent.filter((d) => d.repo === repo);
    const reachable: Record<string, string[]> = {};
    const holders = cluster.backends.filter((b) => repoStates[repo]!.assigned?.includes(b.id) ?? true);
    for (const d of mine) reachable[d.oid] = await refsReaching(holders, repo, d.oid);
    repoStates[repo] = { ...repoStates[repo]!, reachable };
  }
  return { converged, convergenceMs, repos: repoStates };
}

async function finalStates(cluster: DevCluster, redis: Redis, repos: readonly string[], fsck: boolean): Promise<Record<string, FinalRepoState>> {
  const out: Record<string, FinalRepoState> = {};
  const ids = cluster.backends.map((b) => b.id);
  for (const repo of repos) {
    const refs: Record<string, string> = {};
    const fsckResults: Record<string, string | null> = {};
    // Only the assigned copies must hold the repository (a moved-away copy is in its backend's trash).
    const assigned = await assignedOf(redis, repo, ids);
    for (const b of cluster.backends.filter((x) => assigned?.includes(x.id) ?? true)) {
      const gitDir = b.repoPath(repo);
      refs[b.id] = await run('git', ['--git-dir', gitDir, 'for-each-ref', '--format=%(objectname) %(refname)']).catch((e: Error) => `error: ${e.message}`);
      if (fsck) fsckResults[b.id] = await run('git', ['--git-dir', gitDir, 'fsck', '--no-progress', '--no-dangling'], { timeoutMs: 60_000 }).then(() => null, (e: Error) => e.message.slice(0, 500));
    }
    let versions: Record<string, number> = {};
    let frozen: string | null;
    let writing = false;
    try {
      const [v, f, w] = await Promise.all([
        redis.hgetall(`${PREFIX}repo:{${repo}}:versions`),
        redis.hget(`${PREFIX}repo:{${repo}}:frozen`, 'reason'),
        redis.exists(`${PREFIX}repo:{${repo}}:writing`),
      ]);
      versions = Object.fromEntries(Object.entries(v).map(([b, n]) => [b, Number(n)]));
      frozen = f;
      writing = w > 0;
    } catch {
      // Redis not answering: the state stays "not converged".
      frozen = 'redis unreachable';
    }
    out[repo] = { ...(assigned ? { assigned } : {}), refs, fsck: fsckResults, versions, frozen, writing };
  }
  return out;
}

/** Pushes the githas' logs show committed, and those with fan-out copies made ("push committed" lines, `fanOut`). */
function countCommits(dir: string, githas: number): { committed: number; fannedOut: number } {
  let committed = 0;
  let fannedOut = 0;
  for (let i = 1; i <= githas; i++) {
    let text: string;
    try {
      text = readFileSync(join(dir, `g${i}.log`), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line.includes('"msg":"push committed"')) continue;
      committed++;
      if (/"fanOut":\["/.test(line)) fannedOut++;
    }
  }
  return { committed, fannedOut };
}
