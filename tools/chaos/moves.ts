/**
 * Moves during a chaos run (issue 22; docs/chaos.md "Moves"): at random
 * times, `githa move R --from B --to C` run as an operator would (`node
 * dist/cli/main.js move … --config`, a process of its own against the same
 * Redis and backends), B one of R's assigned backends (Redis
 * `githa:repo:{R}:assigned`), C one not assigned; now and then `githa
 * rebalance --max-moves 1`. Each is recorded in the history like a fault
 * (kind `move` or `rebalance`, its exit status in the detail), but it stops
 * nothing: a read during a move must not fail (the checker excuses no read
 * for it). A move and a copy fault never touch one repository at once
 * (`busy`): a copy destroyed by the harness while githa moves it would be a
 * double failure by the harness's own hand.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { DevBackend } from '../../src/demo/cluster.js';
import { GITHA_MAIN } from '../support/paths.js';
import { refsReaching } from './copy-faults.js';
import type { HistoryRecorder } from './history.js';
import type { Rng } from './rng.js';

const PREFIX = 'githa:';

/**
 * A repository's assigned backends (sorted): the fields of
 * `githa:repo:{R}:assigned`, every backend when the hash is absent
 * (docs/redis.md); undefined when Redis does not answer.
 */
export async function assignedOf(redis: Redis, repo: string, all: readonly string[]): Promise<string[] | undefined> {
  try {
    const ids = await redis.hkeys(`${PREFIX}repo:{${repo}}:assigned`);
    return ids.length === 0 ? [...all] : ids.sort();
  } catch {
    return undefined;
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `githa <args…> --config <configPath>` as a process of its own; never throws on a non-zero exit. */
export function githaCli(configPath: string, args: readonly string[], timeoutMs: number): Promise<CliResult> {
  return new Promise((res) => {
    const env: NodeJS.ProcessEnv = { ...process.env, GITHA_CONFIG: '' };
    delete env.GITHA_REDIS_URL;
    execFile(process.execPath, [GITHA_MAIN, ...args, '--config', configPath], { env, timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      res({ code, stdout, stderr });
    });
  });
}

export interface MoveContext {
  readonly backends: readonly DevBackend[];
  readonly repos: readonly string[];
  readonly rec: HistoryRecorder;
  readonly rng: Rng;
  readonly redis: Redis;
  /** No move starts after this (recorder clock, ms). */
  readonly deadline: number;
  /** The operator CLI's config (the cluster's, Redis reached directly). */
  readonly configPath: string;
  /** Pause between two moves. */
  readonly gapMs: readonly [number, number];
  /** Repositories a copy fault or a move is working on (shared with copy-faults.ts). */
  readonly busy: Set<string>;
  /** Chance of `githa rebalance --max-moves 1` instead of a move. */
  readonly rebalance?: number;
}

/** What a command said, for the history: its result (stdout) on success, its complaint (stderr) otherwise. */
function lastLine(r: CliResult): string {
  const pick = (text: string): string[] => text.split('\n').map((l) => l.trim()).filter(Boolean);
  const lines = r.code === 0 ? pick(r.stdout) : [...pick(r.stdout), ...pick(r.stderr)];
  return (r.code === 0 ? (lines[0] ?? '') : (lines.at(-1) ?? '')).slice(0, 300);
}

/**
 * Whether B's copy may be moved away: it holds no commit a copy-divergent
 * fault added there that no other assigned copy reaches yet (repair keeps
 * such a tip under refs/githa/kept/…, then replication spreads it; moving
 * the only copy that has it would put it in the trash by the harness's hand).
 */
async function mayLeave(ctx: MoveContext, repo: string, from: string, assigned: readonly string[]): Promise<boolean> {
  const others = ctx.backends.filter((b) => b.id !== from && assigned.includes(b.id));
  for (const d of ctx.rec.divergent.filter((x) => x.repo === repo && x.backend === from)) {
    if ((await refsReaching(others, repo, d.oid)).length === 0) return false;
  }
  return true;
}

/** Whether a copy was moved (undefined: no move was tried). */
async function oneMove(ctx: MoveContext): Promise<boolean | undefined> {
  const { rec, rng } = ctx;
  const all = ctx.backends.map((b) => b.id);
  for (const repo of rng.shuffle(ctx.repos)) {
    if (ctx.busy.has(repo)) continue;
    ctx.busy.add(repo);
    try {
      const assigned = await assignedOf(ctx.redis, repo, all);
      if (!assigned) return undefined;
      const free = all.filter((b) => !assigned.includes(b));
      if (free.length === 0) continue;
      const from = rng.pick(assigned);
      const to = rng.pick(free);
      if (!(await mayLeave(ctx, repo, from, assigned))) continue;
      const start = rec.now();
      const r = await githaCli(ctx.configPath, ['move', repo, '--from', from, '--to', to, '--as', 'chaos'], 90_000);
      rec.fault({ kind: 'move', target: `${from}→${to}`, start, end: rec.now(), repo, detail: `exit ${r.code ?? 'killed'}: ${lastLine(r)}` });
      return r.code === 0;
    } finally {
      ctx.busy.delete(repo);
    }
  }
  return undefined;
}

async function oneRebalance(ctx: MoveContext): Promise<void> {
  const { rec } = ctx;
  // It may move any repository: wait until no copy fault works on one.
  if (ctx.repos.some((r) => ctx.busy.has(r))) return;
  ctx.repos.forEach((r) => ctx.busy.add(r));
  const start = rec.now();
  try {
    const r = await githaCli(ctx.configPath, ['rebalance', '--max-moves', '1', '--as', 'chaos'], 90_000);
    rec.fault({ kind: 'rebalance', target: '-', start, end: rec.now(), detail: `exit ${r.code ?? 'killed'}: ${lastLine(r)}` });
  } finally {
    ctx.repos.forEach((r) => ctx.busy.delete(r));
  }
}

/** After the deadline, moves go on this long at most while none has been made yet. */
const NONE_MADE_GRACE_MS = 30_000;

/**
 * Moves (and a rebalance now and then) until the deadline, one at a time.
 * A move refused (C down, Redis restarting, an interrupted write not
 * resolved: exit 1 or 2) is tried again after a short pause. While no move
 * has been made, moves go on up to NONE_MADE_GRACE_MS past the deadline
 * (clients and faults have stopped; the run waits for them before it heals),
 * so that a short run still moves a copy.
 */
export async function runMoves(ctx: MoveContext): Promise<void> {
  const { rec, rng } = ctx;
  let made = false;
  let refused = false;
  const until = (): number => (made ? ctx.deadline : ctx.deadline + NONE_MADE_GRACE_MS);
  while (rec.now() + ctx.gapMs[0] < until()) {
    await sleep(refused ? rng.int(300, 1_000) : rng.int(ctx.gapMs[0], ctx.gapMs[1]));
    if (rec.now() >= until()) break;
    if (rec.now() < ctx.deadline && rng.chance(ctx.rebalance ?? 0.2)) {
      await oneRebalance(ctx);
      refused = false;
      continue;
    }
    const moved = await oneMove(ctx);
    refused = moved === false;
    if (moved) made = true;
  }
}
