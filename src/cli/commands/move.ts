/**
 * `githa move R --from B --to C`, `githa rebalance [--dry-run] [--max-moves
 * N] [--max-bytes SIZE] [--bandwidth SIZE/s]`, `githa backend drain B
 * [--dry-run]` and `githa backend undrain B` (docs/cli.md,
 * docs/architecture.md "Moves"). Progress goes to stderr, the result to
 * stdout. Exit 0 when every move was made; 1 when one was refused or
 * failed (the message says why; running the command again finishes it);
 * 2 when it could not run.
 */
import type { Command } from 'commander';
import { Mover, type MoveResult } from '../../cluster/move.js';
import { holding, planInput, planRebalance, runMoves, trashWords, type RunReport } from '../../cluster/rebalance.js';
import type { PlannedMove } from '../../cluster/rebalance-plan.js';
import { Throttle } from '../../cluster/throttle.js';
import { BackendNotManagedError, BackendUnavailableError, MoveRefusedError, RepositoryFrozenError, RepositoryGoneError, RepositoryNotFoundError } from '../../errors.js';
import { MoveStore } from '../../state/move-store.js';
import { EXIT, json } from '../output.js';
import { apply } from './backend.js';
import { backendArg, bytes, operatorName, repositoryArg } from './changes.js';
import { common, Exit, run, type Context } from './context.js';

interface Opts {
  config?: string;
  json?: boolean;
  as?: string;
}

interface RunOpts extends Opts {
  dryRun?: boolean;
  maxMoves?: string;
  maxBytes?: string;
  bandwidth?: string;
}

/** "10M", "512k", "2GiB", "1000" → bytes (k/M/G are 1024-based, as git's own sizes). */
export function parseSize(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:\/s)?$/i.exec(text.trim());
  if (!m) throw new Exit(EXIT.FAILED, `${option} ${text}: not a size (e.g. 500M, 20MiB, 1G${option === '--bandwidth' ? ', 10M/s' : ''})`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.floor(Number(m[1]) * unit);
}

function count(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new Exit(EXIT.FAILED, `${option} ${text}: not a number`);
  return Number(text);
}

function mover(ctx: Context): Mover {
  return new Mover(ctx.parts.cluster.ctx, new MoveStore(ctx.parts.state.scripts, ctx.config.pushLog.maxLength, ctx.parts.state.usage));
}

function runOptions(cmd: Command): Command {
  return cmd
    .option('--dry-run', 'print the plan, move nothing')
    .option('--max-moves <n>', 'make at most this many moves')
    .option('--max-bytes <size>', 'start no move once this many pack bytes were relayed (e.g. 20G)')
    .option('--bandwidth <size/s>', 'cap the relayed packs at this rate (e.g. 50M/s)')
    .option('--as <name>', 'operator name recorded in the push log (default: $USER)');
}

export function register(program: Command): void {
  common(program.command('move'))
    .description('move a repository\'s copy from one backend to another: copied through githa, verified, switched atomically, the old copy to its trash')
    .argument('<repository>', 'the repository')
    .requiredOption('--from <backend>', 'the backend that gives its copy up')
    .requiredOption('--to <backend>', 'the backend that takes it (enabled, not holding it)')
    .option('--bandwidth <size/s>', 'cap the relayed pack at this rate (e.g. 50M/s)')
    .option('--as <name>', 'operator name recorded in the push log (default: $USER)')
    .action((repo: string, opts: Opts & { from: string; to: string; bandwidth?: string }) => run(opts, (ctx) => moveOne(ctx, repositoryArg(repo), opts)));

  runOptions(common(program.command('rebalance')))
    .description('even out the repositories over the backends (after adding some), emptying drained ones first')
    .action((opts: RunOpts) => run(opts, (ctx) => rebalance(ctx, opts, undefined)));

  const backend = program.commands.find((c) => c.name() === 'backend');
  if (!backend) throw new Error('githa backend is registered before githa move');
  runOptions(common(backend.command('drain')))
    .description('give a backend no new repository and move every copy it holds elsewhere (rerun to finish; undrain ends it)')
    .argument('<backend>', 'backend id')
    .action((id: string, opts: RunOpts) => run(opts, (ctx) => drain(ctx, id, opts)));
  common(backend.command('undrain'))
    .description('let a drained backend take new repositories again (the moves made stay)')
    .argument('<backend>', 'backend id')
    .action((id: string, opts: Opts) => run(opts, (ctx) => apply(ctx, id, 'drain', false, 'is no longer drained', opts.json === true)));
}

/** A refusal ends with exit 1 and its message. */
async function refusing<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const refusal = [MoveRefusedError, RepositoryNotFoundError, RepositoryGoneError, RepositoryFrozenError, BackendNotManagedError, BackendUnavailableError];
    if (refusal.some((c) => err instanceof c)) throw new Exit(EXIT.ATTENTION, (err as Error).message);
    throw err;
  }
}

function throttleOf(text: string | undefined): Throttle | undefined {
  return text === undefined ? undefined : new Throttle(parseSize(text, '--bandwidth'));
}

async function moveOne(ctx: Context, repo: string, opts: Opts & { from: string; to: string; bandwidth?: string }): Promise<number> {
  // --from may name a backend removed from the configuration that R is still assigned (the Mover checks the record).
  const from = opts.from;
  const to = backendArg(ctx, opts.to, '--to');
  const progress = (line: string): void => void ctx.streams.err.write(`${line}\n`);
  const r: MoveResult = await refusing(() => mover(ctx).move(repo, from, to, { by: operatorName(opts.as), throttle: throttleOf(opts.bandwidth), progress }));
  if (opts.json) ctx.streams.out.write(json(r));
  else {
    ctx.streams.out.write(`${repo} moved from ${from} to ${to} (version ${r.version}, ${bytes(r.bytes)} relayed, ${(r.ms / 1000).toFixed(1)} s); ${from}'s copy ${trashWords(r)}\n`);
    if (r.materialised) ctx.streams.out.write(`${repo} had no assignment (replication.factor unset): it is now recorded as every configured backend but ${from}\n`);
  }
  return r.trash === 'by-hand' || r.trash === 'unreachable' ? EXIT.ATTENTION : EXIT.OK;
}

/** The backends drained now (`override.drain`). */
function draining(ctx: Context): Set<string> {
  return new Set([...ctx.stored].filter(([, o]) => o.drain === true).map(([id]) => id));
}

async function rebalance(ctx: Context, opts: RunOpts, only: string | undefined): Promise<number> {
  const drains = draining(ctx);
  const input = await planInput(ctx.parts.cluster.ctx, drains);
  const limits = { maxMoves: count(opts.maxMoves, '--max-moves'), maxBytes: opts.maxBytes === undefined ? undefined : parseSize(opts.maxBytes, '--max-bytes') };
  let plan = planRebalance(input.backends, input.repos, { maxMoves: limits.maxMoves });
  if (only !== undefined) plan = plan.filter((m) => m.why === 'drain' && m.from === only);
  const { out, err } = ctx.streams;
  if (opts.dryRun) {
    if (opts.json) out.write(json({ plan }));
    else if (plan.length === 0) out.write('nothing to move\n');
    else for (const m of plan) out.write(`${m.repo}: ${m.from} → ${m.to} (${m.why})\n`);
    return EXIT.OK;
  }
  const report = await runMoves(mover(ctx), plan, { ...limits, throttle: throttleOf(opts.bandwidth), by: operatorName(opts.as), progress: (line) => void err.write(`${line}\n`) });
  const left = only === undefined ? undefined : await leftOn(ctx, only, drains);
  summary(ctx, opts, plan, report, left === undefined ? undefined : { backend: only!, left });
  return report.failed.length > 0 || report.done.some((r) => r.trash === 'by-hand' || r.trash === 'unreachable') || (left ?? 0) > 0 ? EXIT.ATTENTION : EXIT.OK;
}

async function leftOn(ctx: Context, id: string, drains: ReadonlySet<string>): Promise<number> {
  const after = await planInput(ctx.parts.cluster.ctx, drains);
  return holding(after.repos, [id]).get(id) ?? 0;
}

function summary(ctx: Context, opts: RunOpts, plan: readonly PlannedMove[], r: RunReport, drained?: { backend: string; left: number }): void {
  const { out } = ctx.streams;
  if (opts.json) {
    out.write(json({ planned: plan.length, moved: r.done, failed: r.failed, stopped: r.stopped, bytes: r.bytes, ...(drained ? { drained } : {}) }));
    return;
  }
  out.write(`${r.done.length} of ${plan.length} planned move${plan.length === 1 ? '' : 's'} made, ${bytes(r.bytes)} relayed${r.stopped ? ` (stopped: ${r.stopped})` : ''}\n`);
  for (const f of r.failed) out.write(`not moved: ${f.move.repo} ${f.move.from} → ${f.move.to}: ${f.error}\n`);
  if (drained) out.write(`${drained.backend}: ${drained.left} repositor${drained.left === 1 ? 'y' : 'ies'} left${drained.left > 0 ? ` (run githa backend drain ${drained.backend} again)` : ''}\n`);
}

async function drain(ctx: Context, id: string, opts: RunOpts): Promise<number> {
  backendArg(ctx, id, 'backend');
  if (!opts.dryRun) {
    // With --json the change's lines go to stderr: stdout carries one document, the drain's.
    const set = await apply(opts.json ? { ...ctx, streams: { ...ctx.streams, out: ctx.streams.err } } : ctx, id, 'drain', true, 'is drained: it gets no new repository', false);
    if (set === EXIT.FAILED) return set;
    ctx.stored = await ctx.overrides.readAll();
  } else if (!draining(ctx).has(id)) {
    // The plan as the drain would make it.
    ctx.stored = new Map([...ctx.stored, [id, { ...ctx.stored.get(id), drain: true }]]);
  }
  return rebalance(ctx, opts, id);
}
