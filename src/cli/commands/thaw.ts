/**
 * `githa thaw R --demote B | --promote B`, `githa thaw --all-repositories
 * --demote B` (Phorge's `bin/repository thaw`; docs/operations.md "Frozen: write-interrupted"):
 *
 * - --demote B: B stops being a leader and githa forgets what only B had
 *   (its version and checksum, an interrupted write on it, a freeze that
 *   concerns it, its suspect and drift entries). The next-highest copies lead;
 *   B is stale and replication overwrites it. The prompt names exactly what
 *   may be lost: the versions above the new maximum and their push-log entries.
 * - --promote B: only for an ambiguous repository (githa cannot tell which
 *   copy is right): B's live copy becomes the only leader above everything
 *   recorded, the freeze is lifted, every other copy is overwritten by
 *   replication.
 *
 * Each change: under the repository's write lock, one guarded script, one
 * push-log entry (`thaw-demote` / `thaw-promote`) naming the operator.
 */
import type { Command } from 'commander';
import { refsChecksum } from '../../cluster/checksum.js';
import { leadership } from '../../cluster/routing.js';
import { BackendUnavailableError } from '../../errors.js';
import type { RefTip } from '../../backends/types.js';
import type { FreezeReason, RepoState, WritingMarker } from '../../state/repo-state.js';
import type { LogEntry } from '../../state/push-log.js';
import { EXIT, json, progress } from '../output.js';
import { approve, backendArg, changeOptions, describeRefs, operatorName, operatorStore, refDifferences, repositoryArg, shortOid, type ChangeOptions } from './changes.js';
import { common, Exit, isoTime, run, type Context } from './context.js';

interface ThawOptions extends ChangeOptions {
  demote?: string;
  promote?: string;
  allRepositories?: boolean;
}

export function register(program: Command): void {
  changeOptions(common(program.command('thaw')))
    .description('resolve a frozen repository: --demote B forgets what only B had; --promote B makes B\'s copy the only leader of an ambiguous repository')
    .argument('[repository]', 'the repository (or --all-repositories with --demote)')
    .option('--demote <backend>', 'B stops being a leader; githa forgets its version, interrupted write, freeze, suspect and drift entries')
    .option('--promote <backend>', 'ambiguous repository: B\'s live copy becomes the only leader; the other copies are overwritten')
    .option('--all-repositories', 'with --demote: every repository B is involved in')
    .action((repo: string | undefined, opts: ThawOptions) => run(opts, (ctx) => thaw(ctx, repo, opts)));
}

async function thaw(ctx: Context, repoArg: string | undefined, opts: ThawOptions): Promise<number> {
  if ((opts.demote === undefined) === (opts.promote === undefined)) throw new Exit(EXIT.FAILED, 'say what to do: --demote <backend> or --promote <backend>');
  if (opts.allRepositories) {
    if (opts.promote !== undefined) throw new Exit(EXIT.FAILED, '--all-repositories goes with --demote only: promote one repository at a time');
    if (repoArg !== undefined) throw new Exit(EXIT.FAILED, 'name a repository or --all-repositories, not both');
    return demoteAll(ctx, opts.demote!, opts);
  }
  if (repoArg === undefined) throw new Exit(EXIT.FAILED, 'name the repository (or --all-repositories with --demote)');
  const repo = repositoryArg(repoArg);
  if (opts.promote !== undefined) return promote(ctx, repo, backendArg(ctx, opts.promote, '--promote'), opts);
  return demoteOne(ctx, repo, opts.demote!, opts);
}

// ---- demote -----------------------------------------------------------------

/** A version that only the demoted backend holds, with its push-log entry. */
interface LostEntry {
  version: number;
  event: string;
  user: string;
  at?: string | undefined;
  refs: string;
}

interface DemotePlan {
  repo: string;
  backend: string;
  /** B's recorded version (undefined: none). */
  version: number | undefined;
  max: number;
  /** The maximum once B's version is gone, and who holds it. */
  newMax: number;
  newLeaders: string[];
  /** B was the only backend at the maximum: versions newMax+1..max are lost. */
  onlyLeader: boolean;
  lost: LostEntry[];
  marker: WritingMarker | undefined;
  freeze: FreezeReason | '';
  suspect: boolean;
  drift: boolean;
}

/** Events whose version is not new data (copies, drift notes, earlier thaws). */
/** Push-log entries read to name what a demotion loses. */
const DEMOTE_LOG_SCAN = 1000;
const NOT_NEW_DATA = new Set(['catch-up', 'sync', 'drift', 'thaw-demote', 'clear-interrupted']);

function planDemote(repo: string, backend: string, state: RepoState, log: readonly LogEntry[]): DemotePlan | undefined {
  const version = state.versions.get(backend);
  const marker = state.writing?.backend === backend ? state.writing : undefined;
  const { max, leaders } = leadership(state.versions);
  const rest = new Map([...state.versions].filter(([b]) => b !== backend));
  const after = leadership(rest);
  const mentions = new RegExp(`(^|[^A-Za-z0-9_.-])${backend.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^A-Za-z0-9_.-]|$)`);
  const concerns =
    state.frozen !== undefined &&
    (state.frozen.reason === 'write-interrupted' || state.frozen.reason === 'leaders-lost') &&
    (leaders.includes(backend) || marker !== undefined || mentions.test(state.frozen.detail));
  const freeze: FreezeReason | '' = concerns ? state.frozen!.reason : '';
  const plan: DemotePlan = {
    repo,
    backend,
    version,
    max,
    newMax: after.max,
    newLeaders: [...after.leaders].sort(),
    onlyLeader: version !== undefined && after.max < max,
    lost: [],
    marker,
    freeze,
    suspect: state.suspect.has(backend),
    drift: state.drift.has(backend),
  };
  if (version === undefined && !marker && !freeze && !plan.suspect && !plan.drift) return undefined;
  if (plan.onlyLeader) {
    for (const e of log) {
      // A demote restarts the numbering below it: older entries with these numbers are other versions.
      if (e.fields.event === 'thaw-demote') break;
      const v = Number(e.fields.version);
      if (!Number.isFinite(v) || v <= after.max || v > max || NOT_NEW_DATA.has(e.fields.event ?? '')) continue;
      plan.lost.push({ version: v, event: e.fields.event ?? 'push', user: e.fields.user ?? '', at: isoTime(Number(e.id.split('-')[0])), refs: describeRefs(e.fields.refs) });
    }
  }
  return plan;
}

/** What the operator is asked about one repository: exactly what may be lost. */
function describeDemote(p: DemotePlan): string {
  const lines: string[] = [];
  if (p.version === undefined) {
    lines.push(`${p.backend} holds no recorded version of ${p.repo}.`);
  } else if (p.onlyLeader) {
    lines.push(`${p.backend} is the only backend at version ${p.max} of ${p.repo}; the others have at most version ${p.newMax}.`);
    const range = p.newMax + 1 === p.max ? `version ${p.max}` : `versions ${p.newMax + 1}..${p.max}`;
    lines.push(`Demoting it loses what only ${p.backend} has: ${range}.`);
    if (p.lost.length === 0) lines.push('  (the push log has no entry for them any more)');
    for (const e of p.lost) {
      lines.push(`  version ${e.version}  ${e.event}${e.user ? ` by ${e.user}` : ''}${e.at ? `  ${e.at}` : ''}${e.refs ? `  ${e.refs}` : ''}`);
    }
  } else {
    const others = p.newLeaders.join(', ');
    lines.push(
      p.version === p.max
        ? `${p.backend} is a leader of ${p.repo} at version ${p.max} together with ${others}: nothing recorded is lost.`
        : `${p.backend} is stale in ${p.repo} (version ${p.version}; ${others} lead at ${p.max}): nothing recorded is lost.`,
    );
  }
  if (p.marker) {
    lines.push(
      `The interrupted push by ${p.marker.user || 'unknown'} to ${p.backend} (via ${p.marker.proxy}, started ${isoTime(p.marker.started) ?? '?'}) is discarded: whatever it wrote on ${p.backend} is overwritten.`,
    );
  }
  const cleared = [p.freeze ? `the ${p.freeze} freeze` : '', p.suspect ? 'its suspect entry' : '', p.drift ? 'its drift entry (its out-of-band changes are overwritten)' : ''].filter(Boolean);
  if (cleared.length > 0) lines.push(`Also cleared: ${cleared.join(', ')}.`);
  lines.push(
    p.newLeaders.length > 0
      ? `Afterwards ${p.newLeaders.join(', ')} lead at version ${p.newMax}; ${p.backend} is stale and replication overwrites its copy.`
      : `Afterwards no version of ${p.repo} is recorded: githa compares the copies again at the next request (githa recover ${p.repo} does it at once).`,
  );
  return lines.join('\n');
}

async function demoteOne(ctx: Context, repo: string, backend: string, opts: ThawOptions): Promise<number> {
  const { state: st } = ctx.parts;
  const plan = planDemote(repo, backend, await st.repos.read(repo), await st.pushLog.read(repo, { count: DEMOTE_LOG_SCAN }));
  if (!plan) {
    const msg = `${backend} is not involved in ${repo} (no version, interrupted write, freeze, suspect or drift entry): nothing to do`;
    ctx.streams.out.write(opts.json ? json({ repo, backend, status: 'not-involved' }) : `${msg}\n`);
    return EXIT.OK;
  }
  if (!opts.json || !opts.force) ctx.streams.err.write(`${describeDemote(plan)}\n`);
  await approve(ctx.streams, `Demote ${backend} in ${repo}?`, opts.force);
  const result = await applyDemote(ctx, plan, operatorName(opts.as));
  if (opts.json) {
    ctx.streams.out.write(json(result));
  } else if (result.status === 'demoted') {
    ctx.streams.out.write(`${demotedLine(result)}\n`);
  } else {
    ctx.streams.err.write(`githa: ${result.reason}\n`);
  }
  return result.status === 'demoted' ? EXIT.OK : EXIT.ATTENTION;
}

interface DemoteResult {
  repo: string;
  backend: string;
  status: 'demoted' | 'changed';
  version?: number;
  leaders?: string[];
  lostVersions?: number[];
  cleared?: { marker: boolean; freeze: string; suspect: boolean; drift: boolean };
  reason?: string;
}

function demotedLine(r: DemoteResult): string {
  const cleared = r.cleared
    ? [r.cleared.marker ? 'interrupted write' : '', r.cleared.freeze ? `${r.cleared.freeze} freeze` : '', r.cleared.suspect ? 'suspect' : '', r.cleared.drift ? 'drift' : ''].filter(Boolean)
    : [];
  const leaders = r.leaders && r.leaders.length > 0 ? `leaders now ${r.leaders.join(', ')} at version ${r.version}` : 'no version recorded any more';
  return `${r.repo}: demoted ${r.backend}; ${leaders}${cleared.length ? `; cleared: ${cleared.join(', ')}` : ''}; ${r.backend} is stale and replication overwrites its copy`;
}

/** Under the write lock, the guarded script, with the values the operator was shown. */
async function applyDemote(ctx: Context, plan: DemotePlan, user: string): Promise<DemoteResult> {
  const { cluster, state: st } = ctx.parts;
  const ops = operatorStore(ctx);
  const { repo, backend } = plan;
  const r = await cluster.ctx.writeLocks.withLock(repo, (lock) =>
    ops.demote(repo, lock.token, backend, plan.version, plan.max, plan.freeze, {
      user,
      lost: plan.onlyLeader ? `${plan.newMax + 1}..${plan.max}` : '',
    }),
  );
  if (r.status !== 'OK') {
    return {
      repo,
      backend,
      status: 'changed',
      reason:
        r.status === 'MOVED'
          ? `${repo} changed since it was shown (a push or a copy committed meanwhile); nothing was changed: run the command again`
          : `the write lock on ${repo} was lost; nothing was changed`,
    };
  }
  if (plan.newLeaders[0]) await st.index.noteWrite(repo, plan.newLeaders[0], r.max).catch(() => {});
  return {
    repo,
    backend,
    status: 'demoted',
    version: r.max,
    leaders: plan.newLeaders,
    lostVersions: plan.onlyLeader ? range(plan.newMax + 1, plan.max) : [],
    cleared: { marker: r.marker !== '', freeze: r.lifted, suspect: plan.suspect, drift: plan.drift },
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v++) out.push(v);
  return out;
}

async function demoteAll(ctx: Context, backend: string, opts: ThawOptions): Promise<number> {
  const { state: st } = ctx.parts;
  const plans: DemotePlan[] = [];
  for await (const page of st.index.repositories()) {
    for (const repo of page) {
      const plan = planDemote(repo, backend, await st.repos.read(repo), []);
      if (plan) plans.push(plan);
    }
  }
  plans.sort((a, b) => a.repo.localeCompare(b.repo));
  if (plans.length === 0) {
    ctx.streams.out.write(opts.json ? json({ backend, repositories: [] }) : `${backend} is not involved in any repository: nothing to do\n`);
    return EXIT.OK;
  }
  const only = plans.filter((p) => p.onlyLeader);
  const markers = plans.filter((p) => p.marker);
  const frozen = plans.filter((p) => p.freeze);
  const lines = [`${backend} is involved in ${plans.length} repositor${plans.length === 1 ? 'y' : 'ies'}:`];
  lines.push(
    `  ${only.length} where ${backend} is the only leader: their newest versions exist only on ${backend} and are lost` +
      (only.length ? ` (${only.slice(0, 10).map((p) => `${p.repo} ${p.newMax + 1}..${p.max}`).join(', ')}${only.length > 10 ? ', …' : ''})` : ''),
  );
  lines.push(`  ${plans.length - only.length} where nothing recorded is lost`);
  lines.push(`  ${markers.length} with an interrupted write on ${backend} (discarded), ${frozen.length} frozen because of ${backend} (lifted)`);
  if (!opts.json || !opts.force) ctx.streams.err.write(`${lines.join('\n')}\n`);
  await approve(ctx.streams, `Demote ${backend} in these ${plans.length} repositories?`, opts.force);
  const user = operatorName(opts.as);
  const bar = progress(ctx.streams, plans.length, `demoting ${backend}`);
  const results: DemoteResult[] = [];
  for (const initial of plans) {
    let result: DemoteResult;
    try {
      // The log is read now, for the entry; the script still checks the values counted above.
      const plan = planDemote(initial.repo, backend, await st.repos.read(initial.repo), await st.pushLog.read(initial.repo, { count: DEMOTE_LOG_SCAN })) ?? initial;
      result =
        plan.version === initial.version && plan.max === initial.max
          ? await applyDemote(ctx, plan, user)
          : { repo: plan.repo, backend, status: 'changed', reason: `${plan.repo} changed since it was counted; not demoted: run again` };
    } catch (err) {
      result = { repo: initial.repo, backend, status: 'changed', reason: `${initial.repo}: ${(err as Error).message}` };
    }
    results.push(result);
    bar.tick(initial.repo);
  }
  bar.done();
  const failed = results.filter((r) => r.status !== 'demoted');
  if (opts.json) ctx.streams.out.write(json({ backend, repositories: results }));
  else {
    for (const r of results) ctx.streams.out.write(r.status === 'demoted' ? `${demotedLine(r)}\n` : `${r.repo}: NOT demoted: ${r.reason}\n`);
    ctx.streams.out.write(`${backend} demoted in ${results.length - failed.length} of ${results.length} repositories\n`);
  }
  return failed.length > 0 ? EXIT.ATTENTION : EXIT.OK;
}

// ---- promote ----------------------------------------------------------------

async function promote(ctx: Context, repo: string, backend: string, opts: ThawOptions): Promise<number> {
  const { cluster, state: st } = ctx.parts;
  const state = await st.repos.read(repo);
  refuseUnlessAmbiguous(repo, state);
  const refs = await readCopy(ctx, repo, backend);
  const checksum = refsChecksum(refs);
  const { max } = leadership(state.versions);
  const lines = [
    `${backend}'s copy of ${repo}: ${plural(refs.filter((r) => r.name !== 'HEAD').length, 'ref')}, checksum ${checksum.slice(0, 12)}.`,
    `It becomes the only leader at version ${max + 1}${state.frozen ? ` and the ${state.frozen.reason} freeze is lifted` : ''}; every other copy is overwritten by replication:`,
  ];
  for (const b of cluster.activeBackends().filter((x) => x.id !== backend)) {
    let other: RefTip[] | null;
    try {
      other = await cluster.client(b.id).listRefs(repo);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
      lines.push(`  ${b.id}: unreachable now (its copy is overwritten when it returns)`);
      continue;
    }
    if (!other) {
      lines.push(`  ${b.id}: no copy of ${repo}`);
      continue;
    }
    const diff = refDifferences(other, refs);
    if (diff.length === 0) lines.push(`  ${b.id}: same refs as ${backend} (nothing lost)`);
    else {
      lines.push(`  ${b.id}: ${diff.length} ref${diff.length === 1 ? '' : 's'} differ${diff.length === 1 ? 's' : ''}:`);
      for (const d of diff.slice(0, 20)) {
        lines.push(
          d.to === undefined
            ? `    ${d.ref} ${shortOid(d.from)} only on ${b.id}: deleted`
            : d.from === undefined
              ? `    ${d.ref} created at ${shortOid(d.to)}`
              : `    ${d.ref} ${shortOid(d.from)} -> ${shortOid(d.to)}`,
        );
      }
      if (diff.length > 20) lines.push(`    … and ${diff.length - 20} more`);
    }
  }
  if (!opts.json || !opts.force) ctx.streams.err.write(`${lines.join('\n')}\n`);
  await approve(ctx.streams, `Promote ${backend} in ${repo}?`, opts.force);
  const user = operatorName(opts.as);
  const r = await cluster.ctx.writeLocks.withLock(repo, async (lock) => {
    // B's refs now, under the lock: what the record will say must be what B holds.
    const live = refsChecksum(await readCopy(ctx, repo, backend));
    if (live !== checksum) {
      throw new Exit(EXIT.ATTENTION, `${backend}'s copy of ${repo} changed since it was shown; nothing was changed: run the command again`);
    }
    return operatorStore(ctx).promote(repo, lock.token, backend, checksum, { user, refs: refs.filter((x) => x.name !== 'HEAD').length });
  });
  if (r.status === 'UNAMBIGUOUS') refuseUnlessAmbiguous(repo, await st.repos.read(repo));
  if (r.status === 'MAINTENANCE') throw new Exit(EXIT.ATTENTION, `${repo} is under maintenance (githa lock); nothing was changed`);
  if (r.status !== 'OK') throw new Exit(EXIT.ATTENTION, `the write lock on ${repo} was lost; nothing was changed`);
  await st.index.noteWrite(repo, backend, r.version).catch(() => {});
  if (opts.json) ctx.streams.out.write(json({ repo, backend, status: 'promoted', version: r.version, checksum }));
  else ctx.streams.out.write(`${repo}: promoted ${backend}: the only leader at version ${r.version} (checksum ${checksum.slice(0, 12)}); the other copies are stale and replication overwrites them\n`);
  return EXIT.OK;
}

/** --promote is for ambiguity only: while leaders exist that githa trusts, it would throw their pushes away. */
function refuseUnlessAmbiguous(repo: string, state: RepoState): void {
  if (state.frozen?.reason === 'maintenance') throw new Exit(EXIT.ATTENTION, `${repo} is under maintenance (${state.frozen.detail}); nothing was changed`);
  if (state.frozen?.reason === 'ambiguous') return;
  const { max, leaders: found } = leadership(state.versions, new Set(state.drift.keys()));
  const leaders = [...found].sort();
  if (leaders.length === 0) return;
  throw new Exit(
    EXIT.ATTENTION,
    `refusing to promote: ${repo} is not ambiguous: ${leaders.join(', ')} lead${leaders.length === 1 ? 's' : ''} at version ${max}, so githa knows which copy is right. ` +
      `To drop a backend's claim use: githa thaw ${repo} --demote <backend>; to overwrite a stale or drifted copy with the leaders' state use: githa sync ${repo} --to <backend>`,
  );
}

async function readCopy(ctx: Context, repo: string, backend: string): Promise<RefTip[]> {
  let refs: RefTip[] | null;
  try {
    refs = await ctx.parts.cluster.client(backend).listRefs(repo);
  } catch (err) {
    if (err instanceof BackendUnavailableError) throw new Exit(EXIT.FAILED, `cannot read ${backend}'s copy of ${repo}: ${err.message}`);
    throw err;
  }
  if (!refs) throw new Exit(EXIT.ATTENTION, `${repo} does not exist on ${backend}: nothing to promote`);
  return refs;
}
