/**
 * `githa sync R [--to B]`: catches stale copies up now (every stale enabled
 * backend, or just B) from a healthy leader with the catch-up relay, under the
 * repository's write lock, and records each copy with one guarded script
 * (push-log event `sync`). With `--to B` where B is drifted (changed outside
 * githa), the copy overwrites B's out-of-band changes: the refs that differ
 * are named and confirmed first, B's commits the leaders lack are kept on a
 * leader under refs/githa/kept/B/… (src/cluster/kept.ts), and B's drift entry
 * goes once the copy is made.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { copyRepository, type CopyOutcome } from '../../cluster/catch-up.js';
import { refsChecksum } from '../../cluster/checksum.js';
import { keepLacking, type KeepResult } from '../../cluster/kept.js';
import type { Held } from '../../state/lease.js';
import { repoFlags } from '../../cluster/routing.js';
import { leadership } from '../../cluster/routing.js';
import { BackendUnavailableError } from '../../errors.js';
import type { RepoState } from '../../state/repo-state.js';
import { EXIT, json } from '../output.js';
import { approve, backendArg, bytes, changeOptions, operatorName, operatorStore, refDifferences, repositoryArg, shortOid, type ChangeOptions } from './changes.js';
import { common, Exit, run, type Context } from './context.js';

interface SyncOptions extends ChangeOptions {
  to?: string;
}

interface Synced {
  backend: string;
  status: 'synced' | 'failed' | 'skipped';
  source?: string;
  version?: number;
  commands?: number;
  bytes?: number;
  ms?: number;
  driftCleared?: boolean;
  /** Refs kept on a leader before the copy overwrote the target (its commits the leaders lacked). */
  kept?: string[];
  reason?: string;
}

export function register(program: Command): void {
  changeOptions(common(program.command('sync')))
    .description('catch stale copies of a repository up now from a leader; --to B also overwrites B\'s out-of-band changes (drift)')
    .argument('<repository>', 'the repository')
    .option('--to <backend>', 'only this backend (a drifted one is overwritten after confirmation)')
    .action((repo: string, opts: SyncOptions) => run(opts, (ctx) => sync(ctx, repositoryArg(repo), opts)));
}

/** Leaders to copy from: enabled, not drifted; suspect ones and an interrupted write's backend last. */
function sources(ctx: Context, state: RepoState): string[] {
  const flags = repoFlags(state);
  const { leaders } = leadership(state.versions, flags.notLeaders);
  const usable = leaders.filter((b) => ctx.parts.cluster.isEnabled(b) && ctx.parts.cluster.health.isHealthy(b));
  return [...usable.filter((b) => !flags.avoid?.has(b)), ...usable.filter((b) => flags.avoid?.has(b))];
}

async function sync(ctx: Context, repo: string, opts: SyncOptions): Promise<number> {
  const { cluster, state: st } = ctx.parts;
  const to = opts.to === undefined ? undefined : backendArg(ctx, opts.to, '--to');
  const state = await st.repos.read(repo);
  if (state.frozen?.reason === 'ambiguous') {
    throw new Exit(EXIT.ATTENTION, `${repo} is ambiguous: githa cannot tell which copy to copy from; choose one with: githa thaw ${repo} --promote <backend>`);
  }
  if (state.versions.size === 0) throw new Exit(EXIT.ATTENTION, `githa has no record of ${repo}: rebuild it with githa recover ${repo}`);
  const { max } = leadership(state.versions, new Set(state.drift.keys()));
  const from = sources(ctx, state);
  if (from.length === 0) throw new Exit(EXIT.ATTENTION, `no enabled leader of ${repo} to copy from (see githa repo ${repo})`);

  let targets: string[];
  const skipped: Synced[] = [];
  if (to !== undefined) {
    if (!cluster.isEnabled(to)) throw new Exit(EXIT.ATTENTION, `${to} is disabled; enable it first (githa backend enable ${to})`);
    if (state.writing?.backend === to) {
      throw new Exit(EXIT.ATTENTION, `${to} has an interrupted write in ${repo}; it is resolved by itself once ${to} answers, or with githa thaw ${repo} --demote ${to}`);
    }
    if (!state.drift.has(to) && (state.versions.get(to) ?? 0) >= max) {
      ctx.streams.out.write(opts.json ? json({ repo, backends: [{ backend: to, status: 'current', version: max }] }) : `${repo}: ${to} is current (version ${max}): nothing to sync\n`);
      return EXIT.OK;
    }
    targets = [to];
  } else {
    targets = [];
    for (const b of cluster.activeBackends()) {
      if (state.drift.has(b.id)) skipped.push({ backend: b.id, status: 'skipped', reason: `drifted: changed outside githa; overwrite it with githa sync ${repo} --to ${b.id}` });
      else if (state.writing?.backend === b.id) skipped.push({ backend: b.id, status: 'skipped', reason: 'an interrupted write on it is not resolved yet' });
      else if ((state.versions.get(b.id) ?? 0) < max) targets.push(b.id);
    }
  }

  if (to !== undefined && state.drift.has(to)) await confirmOverwrite(ctx, repo, from[0]!, to, opts);

  const user = operatorName(opts.as);
  const results: Synced[] = [];
  if (targets.length > 0) {
    await cluster.ctx.writeLocks.withLock(repo, async (lock) => {
      const now = await st.repos.read(repo);
      const src = sources(ctx, now);
      if (src.length === 0) throw new Exit(EXIT.ATTENTION, `no enabled leader of ${repo} to copy from any more`);
      for (const target of targets) {
        // Repair without loss: a drifted copy's commits the leaders lack are kept before it is overwritten.
        const { state: current, kept } = now.drift.has(target) ? await keepBeforeOverwrite(ctx, repo, now, src, target, lock) : { state: now, kept: [] };
        const from = sources(ctx, current).filter((s) => s !== target);
        for (const k of kept) ctx.streams.err.write(`${target}: ${k.original} ${shortOid(k.oid)} is on no leader: kept as ${k.ref}\n`);
        ctx.streams.err.write(`${target}: copying ${repo} from ${from[0] ?? src[0]} …\n`);
        const r = await syncOne(ctx, repo, current, from, target, lock.token, lock.signal, user);
        if (kept.length > 0) r.kept = kept.map((k) => k.ref);
        results.push(r);
        ctx.streams.err.write(`${target}: ${r.status === 'synced' ? `${bytes(r.bytes ?? 0)} relayed` : 'FAILED'}\n`);
      }
    });
  }
  // noteWrite only updates the repository index and wakes the replicators; the copy has
  // recorded its version, and the replicators' periodic scan covers a lost event
  // (docs/architecture.md, "Index and events outside the commit script").
  for (const r of results) if (r.status === 'synced' && r.version) await st.index.noteWrite(repo, r.backend, r.version).catch(() => {});
  const all = [...results, ...skipped];
  if (opts.json) ctx.streams.out.write(json({ repo, backends: all }));
  else if (all.length === 0) ctx.streams.out.write(`${repo}: every enabled copy is current (version ${max}): nothing to sync\n`);
  else {
    for (const r of all) {
      if (r.status === 'synced') {
        ctx.streams.out.write(
          `${repo}: ${r.backend} synced from ${r.source} at version ${r.version}: ${r.commands} ref update${r.commands === 1 ? '' : 's'}, ${bytes(r.bytes ?? 0)} relayed in ${r.ms} ms${r.driftCleared ? '; its drift is cleared' : ''}${r.kept ? `; its commits the leaders lacked are kept as ${r.kept.join(', ')}` : ''}\n`,
        );
      } else ctx.streams.out.write(`${repo}: ${r.backend} ${r.status === 'failed' ? 'NOT synced' : 'skipped'}: ${r.reason}\n`);
    }
  }
  return all.some((r) => r.status !== 'synced') ? EXIT.ATTENTION : EXIT.OK;
}

/** Names the out-of-band changes on `target` that the copy from `source` overwrites, and asks. */
async function confirmOverwrite(ctx: Context, repo: string, source: string, target: string, opts: SyncOptions): Promise<void> {
  const { cluster } = ctx.parts;
  const lines = [`${target} is drifted: its copy of ${repo} was changed outside githa. Syncing overwrites it with ${source}'s copy:`];
  try {
    const [want, have] = await Promise.all([cluster.client(source).listRefs(repo), cluster.client(target).listRefs(repo)]);
    const diff = refDifferences(have ?? [], want ?? []);
    if (diff.length === 0) lines.push(`  (no ref differs any more)`);
    for (const d of diff.slice(0, 50)) {
      lines.push(
        d.to === undefined
          ? `  ${d.ref} ${shortOid(d.from)} exists only on ${target}: deleted`
          : d.from === undefined
            ? `  ${d.ref} missing on ${target}: created at ${shortOid(d.to)}`
            : `  ${d.ref} ${shortOid(d.from)} on ${target}: reset to ${shortOid(d.to)}`,
      );
    }
    if (diff.length > 50) lines.push(`  … and ${diff.length - 50} more`);
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    throw new Exit(EXIT.FAILED, `cannot compare the copies: ${err.message}`);
  }
  lines.push(`  (commits only ${target} has are kept first on a leader, under refs/githa/kept/${target}/<time>/…)`);
  if (!opts.json || !opts.force) ctx.streams.err.write(`${lines.join('\n')}\n`);
  await approve(ctx.streams, `Overwrite ${target}'s copy of ${repo}?`, opts.force);
}

/** Keeps `target`'s commits the leaders lack on the first leader whose listing matches its record (src/cluster/kept.ts). */
async function keepBeforeOverwrite(ctx: Context, repo: string, state: RepoState, from: string[], target: string, lock: Held): Promise<{ state: RepoState; kept: KeepResult['kept'] }> {
  const { cluster, state: st } = ctx.parts;
  const targetRefs = await cluster.client(target).listRefs(repo, lock.signal);
  if (!targetRefs) return { state, kept: [] }; // missing there: the copy says how to create it
  for (const leader of from.filter((s) => s !== target)) {
    const leaderRefs = await cluster.client(leader).listRefs(repo, lock.signal).catch(() => null);
    if (!leaderRefs || refsChecksum(leaderRefs) !== state.checksums.get(leader)) continue;
    const r = await keepLacking(cluster.ctx, { repo, lock, state, leader, leaderRefs, from: target, fromRefs: targetRefs });
    return { state: r.version === undefined ? state : await st.repos.read(repo), kept: r.kept };
  }
  throw new Exit(EXIT.ATTENTION, `no leader of ${repo} matches its record, so ${target}'s own commits cannot be kept: ${target} is not overwritten`);
}

const BUSY_RETRIES = 40;

/** One copy (retried while a replicator copies the same pair), then the guarded record. */
async function syncOne(ctx: Context, repo: string, state: RepoState, from: string[], target: string, token: string, signal: AbortSignal, user: string): Promise<Synced> {
  const { cluster, state: st } = ctx.parts;
  let last = 'no leader to copy from';
  for (const source of from) {
    const version = state.versions.get(source)!;
    const checksum = state.checksums.get(source)!;
    let outcome: CopyOutcome;
    try {
      let tries = 0;
      do {
        outcome = await copyRepository(st.pairs, {
          repo,
          source: cluster.client(source),
          target: cluster.client(target),
          checksum,
          signal,
          pairLockMs: cluster.config.catchUp.pairLockMs,
          hold: true,
          // A drifted target's own commits were kept above; any other target must hold its record.
          overwrite: state.drift.has(target),
        });
        if (outcome.status !== 'busy') break;
        await sleep(250);
      } while (++tries < BUSY_RETRIES);
    } catch (err) {
      last = (err as Error).message;
      if (err instanceof BackendUnavailableError && err.backendId === target) break;
      continue;
    }
    if (outcome.status === 'busy') {
      last = `another githa kept copying to ${target} for ${(BUSY_RETRIES * 250) / 1000} s`;
      continue;
    }
    if (outcome.status === 'contradicts') {
      last = `${target}'s copy does not hold its recorded refs: a serving githa repairs it (keeping what only it holds); see githa repo ${repo}`;
      await st.repos.markDrift(repo, target, outcome.version, outcome.recorded, outcome.live).catch(() => undefined);
      break;
    }
    if (outcome.status === 'mismatch' || outcome.status === 'current') {
      last = outcome.reason;
      continue;
    }
    const wasDrifted = state.drift.has(target);
    let status: string;
    try {
      status = await operatorStore(ctx).commitSync(repo, token, target, version, checksum, source, {
        user,
        bytes: outcome.bytes,
        durationMs: outcome.ms,
      });
    } finally {
      await outcome.release();
    }
    if (status !== 'OK') return { backend: target, status: 'failed', source, reason: `the copy was made but not recorded (${status.toLowerCase()})` };
    return { backend: target, status: 'synced', source, version, commands: outcome.commands, bytes: outcome.bytes, ms: outcome.ms, driftCleared: wasDrifted };
  }
  return { backend: target, status: 'failed', reason: last };
}
