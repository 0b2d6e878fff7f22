/**
 * What overwriting a copy does to each of its refs (the `githa thaw --promote`
 * and `--demote` prompts): a fast-forward loses nothing; otherwise the
 * commits the ref leaves behind, which only the overwritten copy holds, are
 * named (they are kept under refs/githa/kept/… first: docs/architecture.md
 * "Kept commits", but leave the branch).
 *
 * githa holds no repository of its own, so it asks the two copies as git
 * asks a server: one fetch from each (gitprotocol-v2 "fetch"), wanting its
 * tips, having the ids both listings share, and reads the commits of each
 * pack (src/protocol/pack-commits.ts). A commit in the overwritten copy's pack
 * and not in the kept copy's is one only the overwritten copy holds. Packs
 * larger than `maxBytes` are not read: the prompt then says it could not tell.
 */
import type { BackendClient, RefTip } from '../backends/types.js';
import { packCommits, type PackCommit } from '../protocol/pack-commits.js';

/** One ref of the overwritten copy: its tip there (`from`) and in the kept copy (`to`). */
export interface RefChange {
  ref: string;
  from?: string;
  to?: string;
}

export type RefLoss =
  | { ref: string; from?: string; to?: string; kind: 'created' | 'fast-forward' | 'nothing-lost' }
  | { ref: string; from?: string; to?: string; kind: 'lost'; lost: PackCommit[] }
  | { ref: string; from?: string; to?: string; kind: 'unknown'; why: string };

/** Most pack bytes read from one copy to tell what is lost (beyond: 'unknown'). */
export const LOSS_PACK_MAX_BYTES = 64 * 1024 * 1024;

class TooLarge extends Error {}

async function collect(source: AsyncIterable<Buffer>, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of source) {
    n += c.length;
    if (n > maxBytes) throw new TooLarge();
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/**
 * For each change: 'created' (the ref is new to the overwritten copy),
 * 'fast-forward' (its tip is an ancestor of the kept tip), 'nothing-lost'
 * (the kept copy holds its commits elsewhere), 'lost' (the commits only the
 * overwritten copy holds, newest first), or 'unknown'.
 */
export async function refLosses(
  repo: string,
  kept: { client: BackendClient; refs: readonly RefTip[] },
  overwritten: { client: BackendClient; refs: readonly RefTip[] },
  changes: readonly RefChange[],
  maxBytes = LOSS_PACK_MAX_BYTES,
): Promise<RefLoss[]> {
  const tips = (refs: readonly RefTip[]): Set<string> => new Set(refs.filter((r) => r.name !== 'HEAD').map((r) => r.oid));
  const keptTips = tips(kept.refs);
  const common = [...tips(overwritten.refs)].filter((o) => keptTips.has(o));
  const wantsKept = [...keptTips].filter((o) => !common.includes(o));
  const wantsOver = [...new Set(changes.map((c) => c.from).filter((o): o is string => o !== undefined && !common.includes(o)))];
  const hash = (changes.find((c) => c.from)?.from ?? '').length === 64 ? 'sha256' : 'sha1';
  let keptCommits: Map<string, PackCommit>;
  let overCommits: Map<string, PackCommit>;
  try {
    keptCommits = wantsKept.length > 0 ? packCommits(await collect(kept.client.fetchPack(repo, wantsKept, common), maxBytes), hash) : new Map();
    overCommits = wantsOver.length > 0 ? packCommits(await collect(overwritten.client.fetchPack(repo, wantsOver, common), maxBytes), hash) : new Map();
  } catch (err) {
    const why = err instanceof TooLarge ? `the copies differ by more than ${Math.round(maxBytes / 1024 / 1024)} MiB` : `could not compare the copies: ${(err as Error).message}`;
    return changes.map((c) => ({ ...c, kind: 'unknown' as const, why }));
  }
  return changes.map((c): RefLoss => {
    if (c.from === undefined) return { ...c, kind: 'created' };
    const lost = onlyIn(c.from, overCommits, keptCommits);
    if (lost.length > 0) return { ...c, kind: 'lost', lost };
    return c.to !== undefined && reaches(c.to, c.from, keptCommits) ? { ...c, kind: 'fast-forward' } : { ...c, kind: 'nothing-lost' };
  });
}

/** The commits reachable from `tip` within `over` that `kept` does not hold (a commit kept holds, it holds with its history). */
function onlyIn(tip: string, over: ReadonlyMap<string, PackCommit>, kept: ReadonlyMap<string, PackCommit>): PackCommit[] {
  const out: PackCommit[] = [];
  const seen = new Set<string>();
  const stack = [tip];
  while (stack.length > 0) {
    const oid = stack.pop()!;
    if (seen.has(oid)) continue;
    seen.add(oid);
    const c = over.get(oid);
    if (!c || kept.has(oid)) continue;
    out.push(c);
    for (let i = c.parents.length - 1; i >= 0; i--) stack.push(c.parents[i]!);
  }
  return out;
}

/**
 * Whether `ancestor` is reachable from `tip` within the kept copy's pack (or
 * is the commit where the walk leaves it). An ancestor further back, in the
 * history both copies share, is not found: the caller then says only that
 * nothing is lost, never "fast-forward" by guess.
 */
function reaches(tip: string, ancestor: string, kept: ReadonlyMap<string, PackCommit>): boolean {
  const seen = new Set<string>();
  const stack = [tip];
  while (stack.length > 0) {
    const oid = stack.pop()!;
    if (oid === ancestor) return true;
    if (seen.has(oid)) continue;
    seen.add(oid);
    stack.push(...(kept.get(oid)?.parents ?? []));
  }
  return false;
}
