/**
 * `githa inventory [--track R | --all] [--json]` (docs/operations.md
 * "Inventory and recovery after Redis loss"): every repository across Redis
 * and the backends' own listings (src/cluster/inventory.ts). Prints the rows
 * that need a look (missing copies, untracked, ghosts, leftovers), how each
 * backend was asked, and the counts; exit 1 while any of those exist or a
 * backend could not be asked. `--track R` adopts one untracked repository
 * from its copies, `--all` every one (after Redis was lost).
 */
import type { Command } from 'commander';
import { INVENTORY_CLASSES, type InventoryClass, type InventoryReport, type InventoryRow } from '../../cluster/inventory.js';
import { EXIT, json, table } from '../output.js';
import { repositoryArg } from './changes.js';
import { common, run, type Context } from './context.js';
import { inventoryOf, recoveredWell, recoveryLine } from './recover.js';

export const CLASS_LABEL: Record<InventoryClass, string> = {
  tracked: 'tracked',
  missing: 'missing copy',
  untracked: 'untracked',
  ghost: 'ghost',
  leftover: 'leftover',
};

interface Options {
  config?: string;
  json?: boolean;
  track?: string;
  all?: boolean;
}

export function register(program: Command): void {
  common(program.command('inventory'))
    .description('every repository across Redis and the backends\' listings: tracked, missing copies, untracked, ghosts, leftovers; exit 1 while any needs a look')
    .option('--track <repository>', 'adopt one untracked repository: its record is rebuilt from its copies')
    .option('--all', 'adopt every untracked repository (after Redis lost its state)')
    .action((opts: Options) => run(opts, (ctx) => inventory(ctx, opts)));
}

async function inventory(ctx: Context, opts: Options): Promise<number> {
  const { out } = ctx.streams;
  const asJson = opts.json === true;
  const inv = inventoryOf(ctx);
  if (opts.track !== undefined) {
    const r = await inv.track(repositoryArg(opts.track));
    out.write(asJson ? json(r) : recoveryLine(r));
    return recoveredWell(r) ? EXIT.OK : EXIT.ATTENTION;
  }
  const report = await inv.survey();
  if (opts.all) {
    const results = await inv.trackAll(report);
    if (asJson) out.write(json({ tracked: results, inventory: report }));
    else if (results.length === 0) out.write('nothing to track: no untracked repository\n');
    else for (const r of results) out.write(recoveryLine(r));
    // Leftovers, ghosts and missing copies are not adopted: they still need the operator.
    const after = results.length > 0 ? await inv.survey() : report;
    if (!asJson && results.length > 0) writeCounts(out, after);
    return results.every(recoveredWell) && needsLook(after).length === 0 ? EXIT.OK : EXIT.ATTENTION;
  }
  const why = needsLook(report);
  if (asJson) {
    out.write(json({ ...report, attention: why }));
    return why.length > 0 ? EXIT.ATTENTION : EXIT.OK;
  }
  const shown = report.rows.filter((r) => r.class !== 'tracked' || r.unknown.length > 0);
  if (shown.length > 0) {
    out.write(
      table(
        shown.map((r) => ({ repository: r.repo, class: CLASS_LABEL[r.class], copies: r.copies.join(','), 'missing on': r.missing.join(','), detail: detail(r) })),
        ['repository', 'class', 'copies', 'missing on', 'detail'],
      ),
    );
    out.write('\n');
  }
  for (const b of report.backends) out.write(`${backendLine(b)}\n`);
  writeCounts(out, report);
  for (const r of report.rows.filter((x) => x.class === 'untracked')) out.write(`untracked: ${r.repo}; adopt it with: githa inventory --track ${r.repo}\n`);
  for (const r of report.rows.filter((x) => x.class === 'leftover')) {
    out.write(`leftover: ${r.repo} (${r.gone?.kind}) still on ${r.copies.join(', ')}; finish with: githa ${r.gone?.kind.startsWith('renam') ? `rename ${r.repo} ${r.gone.to ?? '<new name>'}` : `delete ${r.repo}`}\n`);
  }
  return why.length > 0 ? EXIT.ATTENTION : EXIT.OK;
}

/** What needs a look (empty: every repository tracked with all its copies). */
export function needsLook(report: InventoryReport): string[] {
  const why = INVENTORY_CLASSES.filter((c) => c !== 'tracked' && report.counts[c] > 0).map((c) => `${report.counts[c]} ${CLASS_LABEL[c]}`);
  const unreachable = report.backends.filter((b) => b.how === 'unreachable').map((b) => b.backend);
  if (unreachable.length > 0) why.push(`not asked: ${unreachable.join(', ')}`);
  return why;
}

function detail(r: InventoryRow): string {
  const parts: string[] = [];
  if (r.gone) parts.push(r.gone.kind + (r.gone.to ? ` to ${r.gone.to}` : ''));
  if (r.class === 'ghost') parts.push('recorded, no copy on any backend');
  if (r.unknown.length > 0) parts.push(`not asked: ${r.unknown.join(',')}`);
  return parts.join('; ');
}

function backendLine(b: InventoryReport['backends'][number]): string {
  const invalid = b.invalid.length > 0 ? `; ${b.invalid.length} invalid name${b.invalid.length === 1 ? '' : 's'} (left alone): ${b.invalid.join(', ')}` : '';
  switch (b.how) {
    case 'listed':
      return `backend ${b.backend}: listed, ${b.repositories} ${b.repositories === 1 ? 'repository' : 'repositories'}${invalid}`;
    case 'probed':
      return `backend ${b.backend}: not listable (no admin): asked for the known names only, ${b.repositories} found; untracked repositories there cannot be found`;
    case 'skipped':
      return `backend ${b.backend}: not listable (no admin)`;
    case 'unreachable':
      return `backend ${b.backend}: NOT ASKED: ${b.error ?? 'unreachable'}`;
  }
}

function writeCounts(out: NodeJS.WritableStream, report: InventoryReport): void {
  const total = report.rows.length;
  out.write(`${total} ${total === 1 ? 'repository' : 'repositories'}: ${INVENTORY_CLASSES.map((c) => `${CLASS_LABEL[c]} ${report.counts[c]}`).join(', ')}\n`);
}
