/**
 * `githa thaw R --demote B | --promote B`, `githa thaw --all-repositories
 * --demote B` (Phorge's `bin/repository thaw`; docs/cli.md): parses the
 * options, shows the operator what the change does, asks, and renders the
 * result. What a demotion or promotion changes, and the change itself, are in
 * src/cluster/thaw.ts and src/cluster/thaw-promote.ts.
 */
import type { Command } from 'commander';
import type { RefTip } from '../../backends/types.js';
import { BackendUnavailableError } from '../../errors.js';
import { applyDemote, applyDemoteAll, DEMOTE_LOG_SCAN, planDemote, planDemoteAll, type DemoteParts, type DemotePlan, type DemoteResult } from '../../cluster/thaw.js';
import { refLosses, type RefLoss } from '../../cluster/promote-loss.js';
import { applyPromote, keepOnPromoted, otherCopies, planPromote, promoteRefusal, type PromoteParts } from '../../cluster/thaw-promote.js';
import type { RepoState } from '../../state/repo-state.js';
import { EXIT, json, printable, progress } from '../output.js';
import { approve, backendArg, changeOptions, describeRefs, operatorName, operatorStore, refDifferences, repositoryArg, shortOid, type ChangeOptions } from './changes.js';
import { common, Exit, isoTime, run, type Context } from './context.js';
import { holdDemoted } from './thaw-keep.js';

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

/** The collaborators of src/cluster/thaw.ts and thaw-promote.ts, from this process's parts. */
function thawParts(ctx: Context): DemoteParts & Omit<PromoteParts, 'readRefs'> {
  const { cluster, state: st } = ctx.parts;
  return {
    withLock: (repo, fn) => cluster.ctx.writeLocks.withLock(repo, (lock) => fn(lock.token)),
    ops: operatorStore(ctx),
    noteWrite: (repo, backend, version) => st.index.noteWrite(repo, backend, version),
  };
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
      const at = isoTime(e.at);
      const refs = describeRefs(e.refs);
      lines.push(`  version ${e.version}  ${e.event}${e.user ? ` by ${e.user}` : ''}${at ? `  ${at}` : ''}${refs ? `  ${refs}` : ''}`);
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
  lines.push(`Commits only ${p.backend} holds are kept on a leader under refs/githa/kept/${p.backend}/… first (when ${p.backend} can be reached).`);
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
  if (!opts.json || !opts.force) ctx.streams.err.write(`${describeDemote(plan)}\n${(await demotedRefs(ctx, repo, backend, plan.newLeaders)).join('\n')}`);
  await approve(ctx.streams, `Demote ${backend} in ${repo}?`, opts.force);
  // B's own commits are kept on a leader before replication overwrites it (src/cli/commands/thaw-keep.ts).
  const keeper = await holdDemoted(ctx, repo, backend);
  let result: DemoteResult;
  let kept: Awaited<ReturnType<typeof keeper.keep>> = [];
  try {
    result = await applyDemote(plan, operatorName(opts.as), thawParts(ctx));
    if (result.status === 'demoted') kept = await keeper.keep();
  } finally {
    await keeper.release();
  }
  if (opts.json) {
    ctx.streams.out.write(json({ ...result, kept }));
  } else if (result.status === 'demoted') {
    ctx.streams.out.write(`${demotedLine(result)}\n`);
    for (const k of kept) ctx.streams.out.write(`${backend}'s ${k.original} ${shortOid(k.oid)} was not on the leaders: kept as ${k.ref}\n`);
  } else {
    ctx.streams.err.write(`githa: ${result.reason}\n`);
  }
  return result.status === 'demoted' ? EXIT.OK : EXIT.ATTENTION;
}

/**
 * Per ref of B's copy, what replication's overwrite with a leader's state does
 * to it (fast-forward, or the commits that leave it); nothing when B or every
 * leader cannot be read now (the plan above says what is recorded).
 */
async function demotedRefs(ctx: Context, repo: string, backend: string, leaders: readonly string[]): Promise<string[]> {
  const { cluster } = ctx.parts;
  const read = async (id: string): Promise<RefTip[] | null> => cluster.client(id).listRefs(repo).catch((err: unknown) => {
    if (err instanceof BackendUnavailableError) return null;
    throw err;
  });
  const own = await read(backend);
  if (!own) return [];
  for (const leader of leaders.filter((b) => cluster.isEnabled(b))) {
    const refs = await read(leader);
    if (!refs) continue;
    const diff = refDifferences(own, refs);
    if (diff.length === 0) return [`${backend}'s copy has the same refs as ${leader}'s (nothing lost).`, ''];
    const losses = await refLosses(repo, { client: cluster.client(leader), refs }, { client: cluster.client(backend), refs: own }, diff.slice(0, 20));
    return [`${backend}'s copy against ${leader}'s, which replication copies over it:`, ...losses.flatMap((d) => describeLoss(d, backend, leader)), ...(diff.length > 20 ? [`    … and ${diff.length - 20} more`] : []), ''];
  }
  return [];
}

function demotedLine(r: DemoteResult): string {
  const cleared = r.cleared
    ? [r.cleared.marker ? 'interrupted write' : '', r.cleared.freeze ? `${r.cleared.freeze} freeze` : '', r.cleared.suspect ? 'suspect' : '', r.cleared.drift ? 'drift' : ''].filter(Boolean)
    : [];
  const leaders = r.leaders && r.leaders.length > 0 ? `leaders now ${r.leaders.join(', ')} at version ${r.version}` : 'no version recorded any more';
  return `${r.repo}: demoted ${r.backend}; ${leaders}${cleared.length ? `; cleared: ${cleared.join(', ')}` : ''}; ${r.backend} is stale and replication overwrites its copy`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

async function demoteAll(ctx: Context, backend: string, opts: ThawOptions): Promise<number> {
  const { state: st } = ctx.parts;
  const plans = await planDemoteAll(backend, { repositories: () => st.index.repositories(), read: (repo) => st.repos.read(repo) });
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
  const bar = progress(ctx.streams, plans.length, `demoting ${backend}`);
  const parts = { ...thawParts(ctx), read: (repo: string) => st.repos.read(repo), readLog: (repo: string, o: { count: number }) => st.pushLog.read(repo, o) };
  const results = await applyDemoteAll(plans, operatorName(opts.as), parts, (repo) => bar.tick(repo));
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
  const plan = planPromote(repo, backend, state, refs);
  const lines = [
    `${backend}'s copy of ${repo}: ${plural(plan.refCount, 'ref')}, checksum ${plan.checksum.slice(0, 12)}.`,
    `It becomes the only leader at version ${plan.version}${plan.lifts ? ` and the ${plan.lifts} freeze is lifted` : ''}; every other copy is overwritten by replication:`,
  ];
  const others = await otherCopies(backend, cluster.activeBackends().map((b) => b.id), (id) => cluster.client(id).listRefs(repo));
  for (const other of others) {
    const b = other.backend;
    if (other.status === 'unreachable') {
      lines.push(`  ${b}: unreachable now (its copy is overwritten when it returns)`);
      continue;
    }
    if (other.status === 'missing') {
      lines.push(`  ${b}: no copy of ${repo}`);
      continue;
    }
    const diff = refDifferences(other.refs, refs);
    if (diff.length === 0) lines.push(`  ${b}: same refs as ${backend} (nothing lost)`);
    else {
      lines.push(`  ${b}: ${diff.length} ref${diff.length === 1 ? '' : 's'} differ${diff.length === 1 ? 's' : ''}:`);
      const losses = await refLosses(repo, { client: cluster.client(backend), refs }, { client: cluster.client(b), refs: other.refs }, diff.slice(0, 20));
      for (const d of losses) lines.push(...describeLoss(d, b, backend));
      if (diff.length > 20) lines.push(`    … and ${diff.length - 20} more`);
    }
  }
  lines.push(`  (commits only the other copies have are kept on ${backend} first, under refs/githa/kept/<copy>/<time>/…; unreachable copies cannot be)`);
  if (!opts.json || !opts.force) ctx.streams.err.write(`${lines.join('\n')}\n`);
  await approve(ctx.streams, `Promote ${backend} in ${repo}?`, opts.force);
  // Repair without loss: the other copies' commits B lacks are kept on B before replication overwrites them.
  const keepOthers = (name: string, b: string) => keepOnPromoted(name, b, ctx.config.backends.map((x) => x.id).filter((x) => cluster.isEnabled(x)), (id) => cluster.client(id));
  const r = await applyPromote(plan, operatorName(opts.as), { ...thawParts(ctx), readRefs: (b) => readCopy(ctx, repo, b), keepOthers });
  if (r.status === 'changed') throw new Exit(EXIT.ATTENTION, `${backend}'s copy of ${repo} changed since it was shown; nothing was changed: run the command again`);
  if (r.status === 'unambiguous') refuseUnlessAmbiguous(repo, await st.repos.read(repo));
  if (r.status === 'maintenance') throw new Exit(EXIT.ATTENTION, `${repo} is under maintenance (githa lock); nothing was changed`);
  if (r.status !== 'promoted') throw new Exit(EXIT.ATTENTION, `the write lock on ${repo} was lost; nothing was changed`);
  if (r.kept.length > 0) await st.index.noteKept(repo).catch(() => {});
  if (opts.json) ctx.streams.out.write(json({ repo, backend, status: 'promoted', version: r.version, checksum: r.checksum, kept: r.kept }));
  else {
    for (const k of r.kept) ctx.streams.out.write(`${repo}: ${k.from}'s ${k.original} ${shortOid(k.oid)} was not on ${backend}: kept as ${k.ref}\n`);
    ctx.streams.out.write(`${repo}: promoted ${backend}: the only leader at version ${r.version} (checksum ${r.checksum.slice(0, 12)}); the other copies are stale and replication overwrites them\n`);
  }
  return EXIT.OK;
}

/** --promote is for ambiguity only: while leaders exist that githa trusts, it would throw their pushes away. */
function refuseUnlessAmbiguous(repo: string, state: RepoState): void {
  const refusal = promoteRefusal(state);
  if (!refusal) return;
  if (refusal.kind === 'maintenance') throw new Exit(EXIT.ATTENTION, `${repo} is under maintenance (${refusal.detail}); nothing was changed`);
  const { max, leaders } = refusal;
  throw new Exit(
    EXIT.ATTENTION,
    `refusing to promote: ${repo} is not ambiguous: ${leaders.join(', ')} lead${leaders.length === 1 ? 's' : ''} at version ${max}, so githa knows which copy is right. ` +
      `To drop a backend's claim use: githa thaw ${repo} --demote <backend>; to overwrite a stale or drifted copy with the leaders' state use: githa sync ${repo} --to <backend>`,
  );
}

/** Commits named per ref in the prompt; the rest are counted. */
const LOST_SHOWN = 5;

/** One ref of a copy that is overwritten: what it becomes, and whether that is a fast-forward or which commits leave it. */
export function describeLoss(d: RefLoss, copy: string, keeper: string): string[] {
  const move =
    d.to === undefined ? `${d.ref} ${shortOid(d.from!)} only on ${copy}: deleted` : d.from === undefined ? `${d.ref} created at ${shortOid(d.to)}` : `${d.ref} ${shortOid(d.from)} -> ${shortOid(d.to)}`;
  switch (d.kind) {
    case 'created':
      return [`    ${move}`];
    case 'fast-forward':
      return [`    ${move}: fast-forward, nothing lost`];
    case 'nothing-lost':
      return [`    ${move}: nothing lost (${keeper}'s copy holds its commits)`];
    case 'unknown':
      return [`    ${move}: not compared (${d.why})`];
    case 'lost': {
      const n = d.lost.length;
      const lines = [`    ${move}: ${n} commit${n === 1 ? '' : 's'} only on ${copy} leave${n === 1 ? 's' : ''} this ref (kept under refs/githa/kept/${copy}/…):`];
      // A subject is any pusher's text: printed without its control characters (src/cli/output.ts printable).
      for (const c of d.lost.slice(0, LOST_SHOWN)) lines.push(`      ${shortOid(c.oid)} ${printable(c.subject)}`);
      if (n > LOST_SHOWN) lines.push(`      … and ${n - LOST_SHOWN} more`);
      return lines;
    }
  }
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
