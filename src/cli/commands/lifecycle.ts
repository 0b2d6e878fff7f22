/**
 * `githa create R`, `githa delete R`, `githa delete --purge [R]`, `githa
 * restore R`, `githa rename R S` (docs/operations.md "Repository
 * lifecycle", src/cluster/lifecycle.ts). Exit 0 when done; 1 when refused
 * (the name exists or is gone, a backend cannot be managed: the message says
 * what to run) or left partly done (a backend unreachable: run it again);
 * 2 when it could not run.
 */
import type { Command } from 'commander';
import { Lifecycle, type Who } from '../../cluster/lifecycle.js';
import { BackendNotManagedError, BackendUnavailableError, RepositoryExistsError, RepositoryFrozenError, RepositoryGoneError, RepositoryNotFoundError } from '../../errors.js';
import { EXIT, json } from '../output.js';
import { approve, operatorName, repositoryArg } from './changes.js';
import { common, Exit, run, type Context } from './context.js';

interface Opts {
  config?: string;
  json?: boolean;
  as?: string;
}

const who = (opts: Opts): Who => ({ by: operatorName(opts.as), via: 'cli' });
const list = (ids: readonly string[]): string => ids.join(', ');

/** Runs a lifecycle step; a refusal ends with exit 1 and its message. */
async function refusing<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const refusal = [RepositoryExistsError, RepositoryNotFoundError, RepositoryGoneError, BackendNotManagedError, BackendUnavailableError, RepositoryFrozenError];
    if (refusal.some((c) => err instanceof c)) throw new Exit(EXIT.ATTENTION, (err as Error).message);
    throw err;
  }
}

function lifecycle(ctx: Context): Lifecycle {
  return new Lifecycle(ctx.parts.cluster.ctx);
}

export function register(program: Command): void {
  common(program.command('create'))
    .description('create an empty repository on every enabled backend and record it (clonable and pushable at once)')
    .argument('<repository>', 'the new repository')
    .option('--description <text>', 'the repository\'s description file')
    .option('--as <name>', 'operator name recorded in the push log (default: $USER)')
    .action((repo: string, opts: Opts & { description?: string }) => run(opts, (ctx) => create(ctx, repositoryArg(repo), opts)));

  common(program.command('delete'))
    .description('make a repository unreachable at once and move every copy into the dated trash directory (githa restore brings it back); --purge removes trash older than repositories.trashRetentionDays')
    .argument('[repository]', 'the repository (with --purge: only its trash)')
    .option('--purge', 'remove trashed copies older than repositories.trashRetentionDays')
    .option('--as <name>', 'operator name recorded in the push log (default: $USER)')
    .option('--force', 'with --purge: do not ask for confirmation (needed without a terminal)')
    .action((repo: string | undefined, opts: Opts & { purge?: boolean; force?: boolean }) =>
      run(opts, (ctx) => (opts.purge ? purge(ctx, repo === undefined ? undefined : repositoryArg(repo), opts) : remove(ctx, repo, opts))),
    );

  common(program.command('restore'))
    .description('bring a deleted repository back from the trash, with its records')
    .argument('<repository>', 'the deleted repository')
    .option('--as <name>', 'operator name recorded in the push log (default: $USER)')
    .action((repo: string, opts: Opts) => run(opts, (ctx) => restore(ctx, repositoryArg(repo), opts)));

  common(program.command('rename'))
    .description('rename a repository on every copy, history kept; clients of the old name are told the new one')
    .argument('<repository>', 'the repository')
    .argument('<new-name>', 'its new name (must be free)')
    .option('--as <name>', 'operator name recorded in the push log (default: $USER)')
    .action((repo: string, to: string, opts: Opts) => run(opts, (ctx) => rename(ctx, repositoryArg(repo), repositoryArg(to), opts)));
}

function pendingNote(pending: readonly string[], what: string): string {
  return pending.length > 0 ? `not reached: ${list(pending)} (${what})\n` : '';
}

async function create(ctx: Context, repo: string, opts: Opts & { description?: string }): Promise<number> {
  const r = await refusing(() => lifecycle(ctx).create(repo, who(opts), { description: opts.description }));
  const { out } = ctx.streams;
  if (opts.json) out.write(json(r));
  else {
    out.write(`created ${repo} on ${list(r.backends)} (version 1, empty, HEAD refs/heads/${ctx.config.repositories.initialBranch})\n`);
    out.write(pendingNote(r.pending, 'each gets its copy from the fill once it answers'));
  }
  return r.pending.length > 0 ? EXIT.ATTENTION : EXIT.OK;
}

async function remove(ctx: Context, name: string | undefined, opts: Opts): Promise<number> {
  if (name === undefined) throw new Exit(EXIT.FAILED, 'name the repository to delete (githa delete R), or purge the trash (githa delete --purge)');
  const repo = repositoryArg(name);
  const r = await refusing(() => lifecycle(ctx).delete(repo, who(opts)));
  const { out } = ctx.streams;
  if (opts.json) out.write(json(r));
  else {
    const where = r.trashed.length > 0 ? `copies moved to ${ctx.config.repositories.trashDir}/${r.stamp}/ on ${list(r.trashed)}` : 'no copy was left to move';
    out.write(`deleted ${repo}: ${where}; restore with: githa restore ${repo}\n`);
    out.write(pendingNote(r.pending, 'their copies stay until you run githa delete again'));
  }
  return r.pending.length > 0 ? EXIT.ATTENTION : EXIT.OK;
}

async function restore(ctx: Context, repo: string, opts: Opts): Promise<number> {
  const r = await refusing(() => lifecycle(ctx).restore(repo, who(opts)));
  const { out } = ctx.streams;
  if (opts.json) out.write(json(r));
  else {
    out.write(`restored ${repo} (deleted ${r.stamp}) on ${list(r.backends)}\n`);
    if (r.missing.length > 0) out.write(`no copy on ${list(r.missing)}: filled from the others\n`);
  }
  return EXIT.OK;
}

async function rename(ctx: Context, repo: string, to: string, opts: Opts): Promise<number> {
  const r = await refusing(() => lifecycle(ctx).rename(repo, to, who(opts)));
  const { out } = ctx.streams;
  if (opts.json) out.write(json(r));
  else {
    out.write(`renamed ${repo} to ${to} on ${list(r.backends)}; clients of ${repo} are told the new name\n`);
    out.write(pendingNote(r.pending, `their copies keep the old name until you run githa rename ${repo} ${to} again`));
  }
  return r.pending.length > 0 ? EXIT.ATTENTION : EXIT.OK;
}

async function purge(ctx: Context, repo: string | undefined, opts: Opts & { force?: boolean }): Promise<number> {
  const days = ctx.config.repositories.trashRetentionDays;
  await approve(ctx.streams, `remove for good every trashed copy${repo ? ` of ${repo}` : ''} older than ${days} days?`, opts.force);
  const r = await refusing(() => lifecycle(ctx).purge(who(opts), repo));
  const { out } = ctx.streams;
  if (opts.json) out.write(json(r));
  else {
    for (const p of r.purged) out.write(`purged ${p.backend} ${p.stamp} ${p.repo}\n`);
    out.write(`${r.purged.length} trashed cop${r.purged.length === 1 ? 'y' : 'ies'} older than ${days} days removed\n`);
    if (r.freed.length > 0) out.write(`free again (their deletes are purged): ${list(r.freed)}\n`);
    if (r.skipped.length > 0) out.write(`not purged (no admin, or not reachable): ${list(r.skipped)}\n`);
  }
  return EXIT.OK;
}
