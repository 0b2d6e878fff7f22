/**
 * What the operator commands that change state (thaw, lock, sync) share: the
 * operator's name for the push log, confirmation prompts that refuse without
 * a terminal unless --force, and the guarded scripts (OperatorStore).
 */
import type { Command } from 'commander';
import { canonicalRepositoryName } from '../../protocol/repository-name.js';
import { OperatorStore } from '../../state/operator-store.js';
import { confirm, EXIT, type Streams } from '../output.js';
import { Exit, type Context } from './context.js';

export interface ChangeOptions {
  config?: string;
  json?: boolean;
  as?: string;
  force?: boolean;
}

/** `--as <name>` and `--force`. */
export function changeOptions(cmd: Command): Command {
  return cmd
    .option('--as <name>', 'operator name recorded in the push log (default: $USER)')
    .option('--force', 'do not ask for confirmation (needed without a terminal)');
}

/** Who the push log names: --as, else $USER. */
export function operatorName(as: string | undefined): string {
  return as || process.env.USER || process.env.LOGNAME || 'unknown';
}

/**
 * Asks `question` on the terminal unless `force`. Without a terminal (and
 * without --force) nothing is asked and the command refuses: exit 1.
 */
export async function approve(streams: Streams, question: string, force: boolean | undefined): Promise<void> {
  if (force) return;
  if (streams.in.isTTY !== true) {
    throw new Exit(EXIT.ATTENTION, 'not confirmed: there is no terminal to ask on; nothing was changed (run again with --force to go ahead without asking)');
  }
  if (!(await confirm(streams, question))) throw new Exit(EXIT.ATTENTION, 'declined: nothing was changed');
}

export function operatorStore(ctx: Context): OperatorStore {
  return new OperatorStore(ctx.parts.state.scripts, ctx.config.pushLog.maxLength);
}

/** The canonical name, or exit 2 naming what is wrong with it. */
export function repositoryArg(name: string): string {
  try {
    return canonicalRepositoryName(name);
  } catch (err) {
    throw new Exit(EXIT.FAILED, (err as Error).message);
  }
}

/** A configured backend id, or exit 2. */
export function backendArg(ctx: Context, id: string, option: string): string {
  if (!ctx.config.backends.some((b) => b.id === id)) {
    throw new Exit(EXIT.FAILED, `${option} ${id}: no such backend (configured: ${ctx.config.backends.map((b) => b.id).join(', ')})`);
  }
  return id;
}

/** "1a2b3c4" for an object id; "(none)" for the zero id. */
export function shortOid(oid: string | undefined): string {
  if (!oid) return '(none)';
  return /^0+$/.test(oid) ? '(none)' : oid.slice(0, 10);
}

/** One push-log `refs` field ("<old> <new> <ref>" lines) as "ref old..new, …". */
export function describeRefs(refs: string | undefined): string {
  if (!refs) return '';
  return refs
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [oldOid, newOid, ref] = l.split(' ');
      return `${ref ?? '?'} ${shortOid(oldOid)}..${shortOid(newOid)}`;
    })
    .join(', ');
}

/** The refs that differ between two listings: what `from` has that `to` would lose or change. */
export function refDifferences(
  from: ReadonlyArray<{ name: string; oid: string }>,
  to: ReadonlyArray<{ name: string; oid: string }>,
): Array<{ ref: string; from?: string; to?: string }> {
  const a = new Map(from.filter((r) => r.name !== 'HEAD').map((r) => [r.name, r.oid]));
  const b = new Map(to.filter((r) => r.name !== 'HEAD').map((r) => [r.name, r.oid]));
  const out: Array<{ ref: string; from?: string; to?: string }> = [];
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(name);
    const y = b.get(name);
    if (x === y) continue;
    const d: { ref: string; from?: string; to?: string } = { ref: name };
    if (x !== undefined) d.from = x;
    if (y !== undefined) d.to = y;
    out.push(d);
  }
  return out;
}

/** Bytes for people: 812 B, 12.3 KiB, 4.1 MiB. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
