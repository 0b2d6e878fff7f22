/**
 * `githa recover [R…]` (docs/operations.md "Redis lost or restored from an old snapshot"): rebuilds repository records
 * from the backends' checksums: equal copies lead together, differing ones
 * are frozen as ambiguous (src/cluster/recovery.ts). Exit 1 when a repository
 * is left ambiguous or was skipped.
 */
import type { Command } from 'commander';
import { recoverRepository } from '../../cluster/recovery.js';
import { EXIT, progress } from '../output.js';
import { repositoryArg } from './changes.js';
import { common, run, type Context } from './context.js';

/** Above this many repositories, `recover` shows its progress (on stderr). */
const PROGRESS_ABOVE = 1;

export function register(program: Command): void {
  common(program.command('recover'))
    .description('rebuild repository records from the backends\' checksums (after Redis lost its state); equal copies lead together, differing ones are frozen as ambiguous')
    .argument('[repositories...]', 'repositories to rebuild (default: every repository githa knows)')
    .action((repos: string[], opts: { config?: string; json?: boolean }) => run(opts, (ctx) => recover(ctx, repos, opts.json === true)));
}

async function recover(ctx: Context, repos: string[], asJson: boolean): Promise<number> {
  const { out } = ctx.streams;
  const names = repos.length > 0 ? repos.map(repositoryArg) : await allRepositories(ctx);
  if (names.length === 0 && !asJson) out.write('no repositories known: name them (githa recover team/app.git …)\n');
  const bar = names.length > PROGRESS_ABOVE ? progress(ctx.streams, names.length, 'recovering') : undefined;
  let bad = 0;
  for (const repo of names) {
    const r = await recoverRepository(ctx.parts.cluster.ctx, ctx.parts.cluster, repo);
    bar?.tick(repo);
    if (r.status !== 'recovered' && r.status !== 'intact') bad++;
    if (asJson) out.write(`${JSON.stringify(r)}\n`);
    else if (r.status === 'recovered') out.write(`${repo}\trecovered\tversion ${r.version}\tleaders ${r.backends.join(',')}\n`);
    else if (r.status === 'intact') out.write(`${repo}\tintact\tversion ${r.version}\tleaders ${r.leaders.join(',')} (stale copies catch up)\n`);
    else if (r.status === 'ambiguous') {
      const copies = Object.entries(r.copies).map(([b, c]) => `${b}=${c.slice(0, 12)}`).join(' ');
      out.write(`${repo}\tAMBIGUOUS\tfrozen; copies differ: ${copies}; choose one with: githa thaw ${repo} --promote <backend>\n`);
    } else out.write(`${repo}\tskipped\t${r.reason}\n`);
  }
  bar?.done();
  return bad > 0 ? EXIT.ATTENTION : EXIT.OK;
}

async function allRepositories(ctx: Context): Promise<string[]> {
  const names: string[] = [];
  for await (const page of ctx.parts.state.index.repositories()) names.push(...page);
  return names.sort();
}
