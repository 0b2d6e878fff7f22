/**
 * `githa repo factor R N` (docs/cli.md, docs/architecture.md "Replication
 * factor"): changes one repository's replication factor. Raised: placement
 * assigns more backends, which background replication creates and fills.
 * Lowered: the extra backends (non-leaders first) are unassigned and their
 * copies moved to the trash directory; a copy that cannot be (no admin, or
 * unreachable) is named with the command to run by hand. Exit 0 when done,
 * 1 when refused or a copy was left, 2 when it could not run.
 */
import { changeFactor } from '../../cluster/factor.js';
import { RepositoryFrozenError, RepositoryGoneError, RepositoryNotFoundError, ReplicationFactorError } from '../../errors.js';
import { EXIT, json } from '../output.js';
import { operatorName, repositoryArg } from './changes.js';
import { Exit, type Context } from './context.js';

export async function repoFactor(ctx: Context, args: readonly string[], opts: { json?: boolean; as?: string }): Promise<number> {
  const [name, n, ...rest] = args;
  if (name === undefined || n === undefined || rest.length > 0 || !/^\d+$/.test(n)) throw new Exit(EXIT.FAILED, 'usage: githa repo factor <repository> <factor>');
  const repo = repositoryArg(name);
  let r;
  try {
    r = await changeFactor(ctx.parts.cluster.ctx, repo, Number(n), operatorName(opts.as));
  } catch (err) {
    const refusal = [ReplicationFactorError, RepositoryNotFoundError, RepositoryGoneError, RepositoryFrozenError];
    if (refusal.some((c) => err instanceof c)) throw new Exit(EXIT.ATTENTION, (err as Error).message);
    throw err;
  }
  const status = r.left.length > 0 ? EXIT.ATTENTION : EXIT.OK;
  if (opts.json) {
    ctx.streams.out.write(json(r));
    return status;
  }
  const out = ctx.streams.out;
  out.write(`${repo}: factor ${r.factor}, assigned to ${r.assigned.join(', ')}\n`);
  if (r.added.length > 0) out.write(`added ${r.added.join(', ')}: background replication creates and fills their copies\n`);
  if (r.trashed.length > 0) out.write(`unassigned ${r.trashed.join(', ')}: copies moved to ${ctx.config.repositories.trashDir}/${r.stamp}/\n`);
  for (const l of r.left) out.write(`unassigned ${l.backend}: its copy is left (githa no longer reads or writes it); move it to the trash by hand: ${l.command}\n`);
  return status;
}
