/**
 * `githa recover [R…]` (docs/operations.md "Inventory and recovery after Redis loss"): rebuilds repository records
 * from the backends' checksums: equal copies lead together, differing ones
 * are frozen as ambiguous (src/cluster/recovery.ts). Without names: every
 * repository Redis records plus every one the managed backends' listings
 * hold unrecorded (src/cluster/inventory.ts). Exit 1 when a repository is
 * left ambiguous or was skipped, or when githa cannot know any repository.
 */
import type { Command } from 'commander';
import { Inventory, type TrackResult } from '../../cluster/inventory.js';
import { recoverRepository } from '../../cluster/recovery.js';
import { RepositoryGoneError } from '../../errors.js';
import { Tombstones } from '../../state/tombstones.js';
import { EXIT, progress } from '../output.js';
import { repositoryArg } from './changes.js';
import { common, run, type Context } from './context.js';

/** Above this many repositories, `recover` shows its progress (on stderr). */
const PROGRESS_ABOVE = 1;

export function register(program: Command): void {
  common(program.command('recover'))
    .description('rebuild repository records from the backends\' checksums (after Redis lost its state); equal copies lead together, differing ones are frozen as ambiguous')
    .argument('[repositories...]', 'repositories to rebuild (default: every repository Redis records or a managed backend lists)')
    .action((repos: string[], opts: { config?: string; json?: boolean }) => run(opts, (ctx) => recover(ctx, repos, opts.json === true)));
}

/** The inventory of a CLI command (the tombstones found by SCAN). */
export function inventoryOf(ctx: Context): Inventory {
  const { cluster, redis, state } = ctx.parts;
  return new Inventory(cluster.ctx, new Tombstones(redis, state.keys), cluster);
}

/** One line of `recover` / `inventory --track` output. */
export function recoveryLine(r: TrackResult | { repo: string; status: 'gone'; reason: string }): string {
  switch (r.status) {
    case 'recovered':
      return `${r.repo}\trecovered\tversion ${r.version}\tleaders ${r.backends.join(',')}${r.assigned ? `\tassigned ${r.assigned.join(',')}` : ''}\n`;
    case 'intact':
      return `${r.repo}\tintact\tversion ${r.version}\tleaders ${r.leaders.join(',')} (stale copies catch up)\n`;
    case 'already':
      return `${r.repo}\talready tracked\tversion ${r.version}\n`;
    case 'ambiguous': {
      const copies = Object.entries(r.copies).map(([b, c]) => `${b}=${c.slice(0, 12)}`).join(' ');
      return `${r.repo}\tAMBIGUOUS\tfrozen; copies differ: ${copies}; choose one with: githa thaw ${r.repo} --promote <backend>\n`;
    }
    case 'gone':
      return `${r.repo}\trefused\t${r.reason}\n`;
    case 'skipped':
      return `${r.repo}\tskipped\t${r.reason}\n`;
  }
}

/** Whether a result leaves the repository served. */
export function recoveredWell(r: { status: string }): boolean {
  return r.status === 'recovered' || r.status === 'intact' || r.status === 'already';
}

async function recover(ctx: Context, repos: string[], asJson: boolean): Promise<number> {
  const { out } = ctx.streams;
  let names = repos.map(repositoryArg);
  if (names.length === 0) {
    const found = await allRepositories(ctx);
    if (found.names.length === 0) {
      if (!asJson) out.write(`${found.why}\n`);
      return found.known ? EXIT.OK : EXIT.ATTENTION;
    }
    names = found.names;
  }
  const bar = names.length > PROGRESS_ABOVE ? progress(ctx.streams, names.length, 'recovering') : undefined;
  let bad = 0;
  for (const repo of names) {
    const r = await recoverRepository(ctx.parts.cluster.ctx, ctx.parts.cluster, repo).catch((err: unknown) => {
      // A deleted or renamed repository is brought back by `githa restore`, never rebuilt from a leftover copy.
      if (err instanceof RepositoryGoneError) return { repo, status: 'gone' as const, reason: err.message };
      throw err;
    });
    bar?.tick(repo);
    if (!recoveredWell(r)) bad++;
    if (asJson) out.write(`${JSON.stringify(r)}\n`);
    else out.write(recoveryLine(r));
  }
  bar?.done();
  return bad > 0 ? EXIT.ATTENTION : EXIT.OK;
}

/**
 * Every repository Redis records (not deleted) and every one a managed
 * backend lists unrecorded. `known`: githa could look (a record, or a
 * listing); `why`: what it says when there is nothing.
 */
async function allRepositories(ctx: Context): Promise<{ names: string[]; known: boolean; why: string }> {
  const report = await inventoryOf(ctx).survey({ probe: false });
  const names = report.rows.filter((r) => r.class !== 'leftover').map((r) => r.repo);
  const listed = report.backends.filter((b) => b.how === 'listed').map((b) => b.backend);
  const unreachable = report.backends.filter((b) => b.how === 'unreachable').map((b) => `${b.backend} (${b.error ?? 'unreachable'})`);
  if (listed.length > 0) {
    return { names, known: unreachable.length === 0, why: `no repositories: Redis records none and the listings of ${listed.join(', ')} are empty${unreachable.length ? `; not listed: ${unreachable.join(', ')}` : ''}` };
  }
  const why =
    `no repositories known: Redis records none, and no enabled backend can be listed ` +
    (unreachable.length > 0 ? `(unreachable: ${unreachable.join(', ')}; ` : '(') +
    `without admin: ${report.notListable.join(', ') || 'none'}). ` +
    `Give a backend an admin account (backends[].admin, docs/operations.md "Repository lifecycle") so githa can list it, or name the repositories: githa recover team/app.git …`;
  return { names, known: false, why };
}
