/**
 * The fault scheduler (issue 8, "What to build" 2): one fault at a time,
 * chosen and timed by the seeded generator, each healed before the next, so
 * that at most one backend is lost at once (fewer than writeQuorum = 2 of 3:
 * the promise must hold). Every wait is bounded. The copy faults (issue 16:
 * one backend's copy changed on disk) are in copy-faults.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DevBackend, DevCluster } from '../../src/demo/cluster.js';
import { COPY_FAULTS, injectCopyFault } from './copy-faults.js';
import type { DelayRelay } from './delay-relay.js';
import type { GithaProc } from './githa-proc.js';
import type { FaultKind, HistoryRecorder } from './history.js';
import type { Rng } from './rng.js';
import { removeStaleRefLocks } from './stale-locks.js';

export interface FaultContext {
  readonly cluster: DevCluster;
  readonly githas: readonly GithaProc[];
  readonly rec: HistoryRecorder;
  readonly rng: Rng;
  /** No fault starts after this (recorder clock, ms). */
  readonly deadline: number;
  /** Write-lock lease of the githa processes: pauses last longer than this. */
  readonly leaseMs: number;
  /** catchUp.pairLockMs of the githa processes: half the githa pauses, and every Redis delay, last longer than this. */
  readonly pairLockMs: number;
  /** The relay between each githa (by index) and redis-server. */
  readonly redisRelays: readonly DelayRelay[];
  readonly kinds: readonly FaultKind[];
  /** The repositories (copy faults change one backend's copy of one of them). */
  readonly repos: readonly string[];
  /** Pause between two faults. */
  readonly gapMs: readonly [number, number];
  /** Called after every Redis start (AOF fsync on every write: a killed Redis loses no acknowledged write). */
  readonly afterRedisStart: () => Promise<void>;
  /** Whether a repository is repaired since the last copy fault (copy faults hit only such ones). */
  readonly settled?: (repo: string) => Promise<boolean>;
  /** A repository's assigned backends (copy faults change only those copies; issue 22). */
  readonly assigned?: (repo: string) => Promise<readonly string[] | undefined>;
  /** Repositories a copy fault or a move is working on (moves.ts): one at a time per repository. */
  readonly busy?: Set<string>;
}

export async function runFaults(ctx: FaultContext): Promise<void> {
  const { rec, rng } = ctx;
  while (ctx.kinds.length > 0 && rec.now() + ctx.gapMs[0] < ctx.deadline) {
    await sleep(rng.int(ctx.gapMs[0], ctx.gapMs[1]));
    if (rec.now() >= ctx.deadline) break;
    const kind = rng.pick(ctx.kinds);
    const start = rec.now();
    if (COPY_FAULTS.includes(kind)) {
      const copy = { backends: ctx.cluster.backends, repos: ctx.repos, rec, rng, settled: ctx.settled, assigned: ctx.assigned, busy: ctx.busy };
      const { target, detail, repo } = await injectCopyFault(copy, kind);
      rec.fault({ kind, target, start, end: rec.now(), repo, ...(detail ? { detail } : {}) });
      continue;
    }
    const { target, detail } = await inject(ctx, kind);
    rec.fault({ kind, target, start, end: rec.now(), ...(detail ? { detail } : {}) });
  }
}

/**
 * Stops a backend's servers, waits, and starts them again on the same ports,
 * after the operator's step for a crashed Git host (tools/chaos/stale-locks.ts).
 */
async function stopAndRestart(b: DevBackend, signal: NodeJS.Signals, downMs: number): Promise<{ target: string; detail?: string }> {
  await b.stop(signal);
  await sleep(downMs);
  const locks = await removeStaleRefLocks(b.root);
  await b.start();
  return { target: b.id, ...(locks > 0 ? { detail: `removed ${locks} stale ref lock(s), as the runbook says` } : {}) };
}

async function inject(ctx: FaultContext, kind: FaultKind): Promise<{ target: string; detail?: string }> {
  const { cluster, rng, leaseMs } = ctx;
  const pause = (): number => rng.int(leaseMs + 500, 2 * leaseMs + 1_000);
  switch (kind) {
    case 'backend-kill': {
      return stopAndRestart(rng.pick(cluster.backends), 'SIGKILL', rng.int(300, 2_500));
    }
    case 'backend-pause': {
      const b = rng.pick(cluster.backends);
      b.pause();
      await sleep(pause());
      b.resume();
      return { target: b.id };
    }
    case 'backend-unreachable': {
      // Its servers stop (connections refused) for a while, then come back on the same ports.
      return stopAndRestart(rng.pick(cluster.backends), 'SIGTERM', rng.int(1_000, 4_000));
    }
    case 'githa-pause': {
      // Half the pauses outlast the copy pair lock too (a githa stopped while it holds one comes back after it expired).
      const g = rng.pick(ctx.githas);
      const ms = rng.chance(0.5) ? pause() : rng.int(ctx.pairLockMs + 500, ctx.pairLockMs + 2_500);
      g.pause();
      await sleep(ms);
      g.resume();
      return { target: g.name, detail: `${ms} ms${ms > ctx.pairLockMs ? ', longer than catchUp.pairLockMs' : ''}` };
    }
    case 'redis-slow': {
      // Every Redis reply to one githa is held longer than the write-lock lease and the pair lock: its
      // leases run out while it waits; requests still reach Redis at once (other githas are not slowed).
      const i = rng.int(0, ctx.redisRelays.length - 1);
      const relay = ctx.redisRelays[i]!;
      const delay = rng.int(ctx.pairLockMs + 500, ctx.pairLockMs + 2_500);
      relay.delayMs = delay;
      await sleep(rng.int(delay, delay + 2_000));
      relay.delayMs = 0;
      await relay.drained(delay + 5_000);
      return { target: ctx.githas[i]?.name ?? `g${i + 1}`, detail: `replies held ${delay} ms` };
    }
    case 'githa-kill-mid-push': {
      // Wait (bounded) for a push in flight through some githa, then kill that githa a moment later.
      let index: number | undefined;
      for (let i = 0; i < 100 && index === undefined; i++) {
        const busy = [...ctx.rec.inFlightPushes].filter(([, n]) => n > 0).map(([g]) => g);
        if (busy.length > 0) index = rng.pick(busy);
        else await sleep(50);
      }
      const g = ctx.githas[index ?? rng.int(0, ctx.githas.length - 1)]!;
      await sleep(rng.int(0, 150));
      const midPush = (ctx.rec.inFlightPushes.get(g.index) ?? 0) > 0;
      await g.kill();
      await sleep(rng.int(200, 1_500));
      await g.start();
      return { target: g.name, detail: midPush ? 'a push was in flight' : 'no push in flight' };
    }
    case 'redis-restart': {
      await cluster.redis.stop('SIGKILL');
      await sleep(rng.int(200, 1_500));
      await cluster.redis.start();
      await ctx.afterRedisStart();
      return { target: 'redis' };
    }
    default:
      throw new Error(`${kind} is injected by copy-faults.ts`);
  }
}

/** Resumes and restarts everything (the end of the run, or after a harness error). */
export async function healAll(cluster: DevCluster, githas: readonly GithaProc[], afterRedisStart: () => Promise<void>, redisRelays: readonly DelayRelay[] = []): Promise<void> {
  for (const r of redisRelays) r.delayMs = 0;
  const redisWasDown = cluster.redis.state !== 'running';
  await cluster.ensureRunning();
  if (redisWasDown) await afterRedisStart();
  for (const g of githas) {
    g.resume();
    if (!g.running) await g.start();
  }
}
