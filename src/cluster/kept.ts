/**
 * Repair without loss (docs/architecture.md "Verified copies"): before a
 * copy that contradicts its record is overwritten, its tips that the leaders
 * lack are kept by a githa write on a leader under the reserved namespace
 * `refs/githa/kept/<backend>/<UTC yyyymmddThhmmssZ>/<ref without "refs/">`.
 * The write is an ordinary WriteSession: marker, quorum copies, commit at
 * max + 1, so the kept commits are part of the record and spread to every
 * copy like any push. Operators drop them with
 * `git push <githa remote> --delete <ref>`.
 */
import type { BackendClient, RefTip } from '../backends/types.js';
import { CatchUpError } from '../errors.js';
import { ZERO_OID, type RefCommand } from '../protocol/receive-pack-request.js';
import type { ReportStatus } from '../protocol/report-status.js';
import type { Held } from '../state/lease.js';
import type { RepoState } from '../state/repo-state.js';
import { AGENT } from '../version.js';
import type { ClusterContext } from './context.js';
import { WriteSession } from './write-session.js';

export const KEPT_PREFIX = 'refs/githa/kept/';

/** `refs/githa/kept/<backend>/<yyyymmddThhmmssZ>/<ref without "refs/">`. */
export function keptRefName(backend: string, at: Date, ref: string): string {
  const stamp = at.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  return `${KEPT_PREFIX}${backend}/${stamp}/${ref.replace(/^refs\//, '')}`;
}

/** The kept refs of a listing. */
export function keptRefs(refs: readonly RefTip[]): RefTip[] {
  return refs.filter((r) => r.name.startsWith(KEPT_PREFIX));
}

/** How an operator drops a kept ref (docs/operations.md "Kept commits"). */
export function dropCommand(ref: string): string {
  return `git push <githa remote> --delete ${ref}`;
}

/**
 * The copy's tips that may hold commits the leader lacks: refs whose object
 * differs from the leader's ref of that name and is none of the leader's
 * tips. HEAD is not a ref the protocol can write, ".have" lines are not refs.
 */
export function candidateTips(leader: readonly RefTip[], copy: readonly RefTip[]): RefTip[] {
  const byName = new Map(leader.map((r) => [r.name, r.oid]));
  const tips = new Set(leader.map((r) => r.oid));
  return copy.filter((r) => r.name !== 'HEAD' && r.name !== '.have' && byName.get(r.name) !== r.oid && !tips.has(r.oid));
}

export interface KeepRequest {
  repo: string;
  /** The repository's write lock, held by the caller. */
  lock: Held;
  /** The state read under that lock. */
  state: RepoState;
  /** A leader whose listing (`leaderRefs`) equals its record. */
  leader: string;
  leaderRefs: readonly RefTip[];
  /** The copy about to be overwritten, and its listing. */
  from: string;
  fromRefs: readonly RefTip[];
  /** When the kept refs are named (tests pass a fixed one). */
  at?: Date;
}

export interface KeepResult {
  /** Tips the leader lacked, now kept: kept ref name → original ref and object. */
  kept: { ref: string; original: string; oid: string }[];
  /** The version the keeping write committed (undefined: nothing had to be kept). */
  version?: number;
  /** Whether any differing tip was compared at all (false: the copy holds only what the leader has by name). */
  differed: boolean;
}

/** `from`'s tips that `onto` (listed as `ontoRefs`) lacks, asked with hasObjects: git's own negotiation. */
export async function lackingTips(repo: string, onto: BackendClient, ontoRefs: readonly RefTip[], fromRefs: readonly RefTip[], signal?: AbortSignal): Promise<RefTip[]> {
  const candidates = candidateTips(ontoRefs, fromRefs);
  if (candidates.length === 0) return [];
  const tip = ontoRefs.find((r) => r.name !== 'HEAD')?.oid;
  // An empty repository has nothing: every candidate is lacking.
  const has = tip === undefined ? new Set<string>() : await onto.hasObjects(repo, tip, [...new Set(candidates.map((c) => c.oid))], signal);
  return candidates.filter((c) => !has.has(c.oid));
}

/** The commands creating a kept ref for each lacking tip. */
export function keepCommands(from: string, at: Date, lacking: readonly RefTip[]): RefCommand[] {
  return lacking.map((c) => ({ oldOid: ZERO_OID, newOid: c.oid, ref: keptRefName(from, at, c.name) }));
}

/** One receive-pack on `onto` creating `commands`, its pack relayed from `source` (want the lacking tips, have `onto`'s). */
export async function pushKept(repo: string, source: BackendClient, onto: BackendClient, commands: readonly RefCommand[], signal?: AbortSignal): Promise<{ report: ReportStatus; bytes: number }> {
  const adv = await onto.receivePackAdvertisement(repo, signal);
  if (!adv) throw new CatchUpError(`${repo} is missing on ${onto.id}`);
  if (!adv.capabilities.includes('report-status')) throw new CatchUpError(`${onto.id} does not offer report-status`);
  const caps = ['report-status', 'atomic', 'ofs-delta', 'quiet'].filter((c) => adv.capabilities.includes(c));
  let bytes = 0;
  const wants = [...new Set(commands.map((c) => c.newOid))];
  const haves = [...new Set(adv.refs.map((r) => r.oid))];
  const pack = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of source.fetchPack(repo, wants, haves, signal)) {
      bytes += chunk.length;
      yield chunk;
    }
  };
  const report = await onto.pushPack(repo, commands, [...caps, `agent=${AGENT}`], pack(), signal);
  return { report, bytes };
}

/** Why a kept-refs push did not keep everything ('' when it did). */
export function refusedKeeps(report: ReportStatus | undefined, commands: readonly RefCommand[]): string {
  if (!report) return 'no report';
  if (!report.unpackOk) return `unpack ${report.unpackError ?? 'failed'}`;
  const ok = new Set(report.refs.filter((r) => r.ok).map((r) => r.ref));
  return commands.filter((c) => !ok.has(c.ref)).map((c) => `${c.ref}: ${report.refs.find((r) => r.ref === c.ref)?.reason ?? 'rejected'}`).join(', ');
}

/**
 * Keeps `from`'s tips that `leader` lacks on `leader`, under the caller's
 * write lock, as a githa write (WriteSession: marker, quorum copies, commit
 * at max + 1). Throws CatchUpError when they could not all be kept: the
 * caller must not overwrite the copy then.
 */
export async function keepLacking(ctx: ClusterContext, req: KeepRequest): Promise<KeepResult> {
  const { repo, lock, leader, from } = req;
  const source = ctx.backends.client(from);
  const target = ctx.backends.client(leader);
  if (candidateTips(req.leaderRefs, req.fromRefs).length === 0) return { kept: [], differed: false };
  const lacking = await lackingTips(repo, target, req.leaderRefs, req.fromRefs, lock.signal);
  if (lacking.length === 0) return { kept: [], differed: true };
  const commands = keepCommands(from, req.at ?? new Date(), lacking);
  let report: ReportStatus | undefined;
  const session = new WriteSession(ctx, { repo, user: 'githa', transport: 'repair', commands }, lock, req.state, ctx.backends.backend(leader));
  const outcome = await session.run(async (_backend, signal) => {
    const pushed = await pushKept(repo, source, target, commands, signal);
    report = pushed.report;
    return { ending: 'complete', report: pushed.report, commands, bytes: pushed.bytes };
  });
  const refused = refusedKeeps(report, commands);
  if (outcome.kind !== 'committed' || refused !== '') {
    throw new CatchUpError(`could not keep ${from}'s commits of ${repo} on ${leader} (${refused || outcome.kind}); ${from} is not overwritten`);
  }
  ctx.index.noteKept(repo).catch((err: unknown) => ctx.log.debug({ repo, err: (err as Error).message }, 'could not note the kept refs for githa dataloss'));
  return { kept: lacking.map((c, i) => ({ ref: commands[i]!.ref, original: c.name, oid: c.oid })), version: outcome.version, differed: true };
}
