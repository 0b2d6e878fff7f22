/**
 * `githa status`: every repository's state (Synchronized / Partial /
 * Unsynchronized / Ambiguous / Frozen), every backend, counts per state and
 * the replication backlog. Exit 1 when a repository is unsynchronized,
 * ambiguous or frozen, a copy is drifted (DETAIL names its kind: missing,
 * empty, behind, divergent), an enabled backend is down, or a copy is
 * missing, a repository untracked or a ghost (from the managed backends'
 * listings: docs/operations.md "Inventory and recovery after Redis loss").
 */
import type { Command } from 'commander';
import { collectStatus, type ClusterStatus, type CopiesStatus } from '../../cluster/cluster-status.js';
import type { RepoHealth } from '../../cluster/status.js';
import { EXIT, json, progress, table } from '../output.js';
import { lostOverrides, readOverridesFile, type LostOverride } from '../../state/overrides-file.js';
import { ago, common, isoTime, run, type Context } from './context.js';
import { createCommandFor } from './kept-refs.js';
import { inventoryOf } from './recover.js';
import { holding, planInput } from '../../cluster/rebalance.js';

/** Above this many repositories, `status` shows its progress while reading. */
const PROGRESS_ABOVE = 200;
const PAGE = 200;

export const STATE_LABEL: Record<RepoHealth, string> = {
  synchronized: 'Synchronized',
  partial: 'Partial',
  unsynchronized: 'Unsynchronized',
  ambiguous: 'Ambiguous',
  frozen: 'Frozen',
};

export function register(program: Command): void {
  common(program.command('status'))
    .description('every repository\'s state and every backend; exit 1 when something is at risk, frozen, ambiguous or down')
    .action((opts: { config?: string; json?: boolean }) => run(opts, (ctx) => status(ctx, opts.json === true)));
}

/** Why `status` needs attention (empty: all well). */
export function attention(s: ClusterStatus): string[] {
  const why: string[] = [];
  for (const state of ['unsynchronized', 'ambiguous', 'frozen'] as const) {
    if (s.counts[state] > 0) why.push(`${s.counts[state]} ${state}`);
  }
  // A copy that contradicts its record is being repaired, or waits for an operator (missing): docs/operations.md.
  const drifted = s.repositories.reduce((n, r) => n + r.drifted.length, 0);
  if (drifted > 0) why.push(`${drifted} drifted cop${drifted === 1 ? 'y' : 'ies'}`);
  const down = s.backends.filter((b) => b.enabled && b.health === 'down').map((b) => b.id);
  if (down.length > 0) why.push(`down: ${down.join(', ')}`);
  // Removed from the configuration while still assigned: replaced by re-replication (docs/operations.md "Retiring a backend").
  const removed = Object.keys(s.unconfigured ?? {});
  if (removed.length > 0) why.push(`assigned but not configured: ${removed.join(', ')}`);
  const c = s.copies;
  if (c) {
    const missing = Object.values(c.missing).reduce((n, r) => n + r.length, 0);
    if (missing > 0) why.push(`${missing} missing cop${missing === 1 ? 'y' : 'ies'}`);
    if (c.untracked.length > 0) why.push(`${c.untracked.length} untracked`);
    if (c.ghosts.length > 0) why.push(`${c.ghosts.length} ghost${c.ghosts.length === 1 ? '' : 's'}`);
    if (c.leftovers.length > 0) why.push(`${c.leftovers.length} leftover${c.leftovers.length === 1 ? '' : 's'}`);
    if (c.unlisted.length > 0) why.push(`not listed: ${c.unlisted.map((u) => u.backend).join(', ')}`);
  }
  return why;
}

async function status(ctx: Context, asJson: boolean): Promise<number> {
  const { cluster, redis, state: st } = ctx.parts;
  const total = await redis.zcard(st.keys.repos());
  const bar = total > PROGRESS_ABOVE ? progress(ctx.streams, Math.ceil(total / PAGE), 'reading repositories') : undefined;
  const collected = await collectStatus(cluster, st, ctx.health, (done) => bar?.tick(`${done} repositories`), inventoryOf(ctx));
  const s: ClusterStatus = { ...collected, repositories: collected.repositories.map((r) => ({ ...r, leaders: [...r.leaders].sort() })) };
  bar?.done();
  const lost = lostOverridesOf(ctx);
  const why = [...attention(s), ...(lost.length > 0 ? [`overrides lost: ${lost.map((l) => l.backend).join(', ')}`] : [])];
  const out = ctx.streams.out;
  // Drained backends and how many repositories each still holds (read only while one is drained: docs/architecture.md "Moves").
  const drains = [...ctx.stored].filter(([, o]) => o.drain === true).map(([id]) => id);
  const draining = drains.length > 0 ? Object.fromEntries(holding((await planInput(cluster.ctx, new Set(drains))).repos, drains)) : undefined;
  if (asJson) {
    const maintenance = ctx.config.backends.filter((b) => ctx.stored.get(b.id)?.maintenance).map((b) => b.id);
    out.write(json({ ...s, attention: why, lostOverrides: lost, maintenance, ...(draining ? { draining } : {}) }));
    return why.length > 0 ? EXIT.ATTENTION : EXIT.OK;
  }
  // What the listings found, per repository: its missing copies, or a ghost.
  const listed = new Map<string, string[]>();
  for (const [b, repos] of Object.entries(s.copies?.missing ?? {})) for (const r of repos) listed.set(r, [...(listed.get(r) ?? []), `missing on ${b}`]);
  const ghosts = new Set(s.copies?.ghosts ?? []);
  for (const r of ghosts) listed.set(r, ['ghost: no copy on any backend']);
  if (s.repositories.length === 0) out.write('no repositories known yet (each is recorded when first used through githa)\n\n');
  else {
    out.write(
      table(
        s.repositories.map((r) => ({
          repository: r.repo,
          // A ghost's record may look synchronized: the listings say no copy exists (issue: "a Synchronized ghost").
          state: ghosts.has(r.repo) ? 'GHOST' : STATE_LABEL[r.state],
          version: r.version,
          leaders: r.leaders.join(','),
          stale: r.stale.join(','),
          'last write': ago(r.lastWriteAt, s.at),
          detail: detail(r, listed.get(r.repo)),
        })),
        ['repository', 'state', 'version', 'leaders', 'stale', 'last write', 'detail'],
      ),
    );
    out.write('\n');
  }
  out.write(
    table(
      s.backends.map((b) => {
        const o = ctx.stored.get(b.id);
        return {
          backend: b.id,
          zone: b.zone,
          // A backend disabled for planned maintenance is coming back: not re-replicated (docs/architecture.md "Re-replication").
          enabled: (b.enabled ? 'yes' : o?.enabled === false ? 'no (override)' : 'no') + (o?.maintenance ? ', maintenance' : ''),
          writable: b.writable ? 'yes' : o?.writable === false ? 'no (override)' : 'no',
          health: b.health,
          leads: b.leads,
          stale: b.stale,
          detail: b.detail,
        };
      }),
      ['backend', 'zone', 'enabled', 'writable', 'health', 'leads', 'stale', 'detail'],
    ),
  );
  out.write('\n');
  const counts = (Object.keys(STATE_LABEL) as RepoHealth[]).map((k) => `${STATE_LABEL[k]} ${s.counts[k]}`).join(', ');
  out.write(`${s.repositories.length} ${s.repositories.length === 1 ? 'repository' : 'repositories'}: ${counts}\n`);
  out.write(`replication backlog: ${s.backlog} stale (repository, backend) pair${s.backlog === 1 ? '' : 's'}; write quorum ${s.writeQuorum}\n`);
  if (s.copies) writeCopies(out, s.copies);
  for (const [b, n] of Object.entries(s.unconfigured ?? {})) {
    out.write(`${b} is not in the configuration but still assigned ${n} repositor${n === 1 ? 'y' : 'ies'}: re-replication replaces it (githa move R --from ${b} --to C does one now)\n`);
  }
  for (const [b, left] of Object.entries(draining ?? {})) out.write(`draining ${b}: ${left} repositor${left === 1 ? 'y' : 'ies'} left${left > 0 ? ` (githa backend drain ${b} moves them)` : ''}\n`);
  if (why.length > 0) out.write(`attention: ${why.join('; ')}\n`);
  for (const l of lost) out.write(`${lostOverrideLine(ctx, l)}\n`);
  for (const r of s.repositories) {
    for (const b of r.drifted.filter((d) => r.driftKinds?.[d] === 'missing')) {
      out.write(`missing on ${b}: ${r.repo}; githa cannot create repositories; create it with: ${await createCommandFor(ctx, r.repo, b, await st.repos.read(r.repo))}\n`);
    }
  }
  return why.length > 0 ? EXIT.ATTENTION : EXIT.OK;
}

function detail(r: ClusterStatus['repositories'][number], copies: readonly string[] = []): string {
  const parts: string[] = [...copies];
  if (r.reason) parts.push(r.reason);
  if (r.writing) parts.push(`${r.writing.interrupted ? 'interrupted write' : 'write in flight'} on ${r.writing.backend}`);
  // What each drifted copy holds: missing / empty / behind / divergent (changed: not repaired yet).
  const kinds = r.driftKinds ?? {};
  for (const b of r.drifted.filter((d) => kinds[d] === 'missing')) parts.push(`missing on ${b}`);
  const others = r.drifted.filter((d) => kinds[d] !== 'missing');
  if (others.length > 0) parts.push(`drifted: ${others.map((b) => `${b} (${kinds[b] ?? 'changed'})`).join(',')}`);
  if (r.suspect.length > 0) parts.push(`suspect: ${r.suspect.join(',')}`);
  return [...new Set(parts)].join('; ');
}

/** Names shown per line before "… and N more". */
const NAMES_SHOWN = 10;

function names(repos: readonly string[]): string {
  const more = repos.length - NAMES_SHOWN;
  return repos.slice(0, NAMES_SHOWN).join(', ') + (more > 0 ? ` … and ${more} more (githa inventory lists them all)` : '');
}

/** Missing copies per backend (a new backend's fill progress), untracked repositories, ghosts and leftovers. */
function writeCopies(out: NodeJS.WritableStream, c: CopiesStatus): void {
  if (c.listed.length > 0) out.write(`listed backends: ${c.listed.join(', ')}${c.notListable.length ? `; not listable (no admin): ${c.notListable.join(', ')}` : ''}\n`);
  else out.write(`untracked repositories: not looked for (no enabled backend has admin to list it; githa inventory asks the others for known names only)\n`);
  for (const u of c.unlisted) out.write(`listing of ${u.backend} failed: ${u.error}\n`);
  for (const [b, repos] of Object.entries(c.missing)) if (repos.length > 0) out.write(`missing copies on ${b}: ${repos.length} (${names(repos)})\n`);
  if (c.untracked.length > 0) out.write(`untracked: ${c.untracked.length} (${names(c.untracked)}); adopt with: githa inventory --track R, or --all\n`);
  if (c.ghosts.length > 0) out.write(`ghosts (recorded, no copy on any backend): ${c.ghosts.length} (${names(c.ghosts)})\n`);
  if (c.leftovers.length > 0) out.write(`leftovers (deleted or renamed, a copy remains): ${c.leftovers.length} (${names(c.leftovers)})\n`);
  for (const [b, paths] of Object.entries(c.invalid)) out.write(`invalid names on ${b} (left alone): ${names(paths)}\n`);
}

/**
 * The overrides backendOverridesFile records that Redis does not hold: Redis
 * lost its data or was restored from an older snapshot, and each such backend
 * now runs with its configured flags (docs/operations.md "Redis lost or
 * restored from an old snapshot").
 */
function lostOverridesOf(ctx: Context): LostOverride[] {
  const path = ctx.config.backendOverridesFile;
  if (!path) return [];
  return lostOverrides(readOverridesFile(path), ctx.stored).filter((l) => ctx.config.backends.some((b) => b.id === l.backend));
}

/** What was lost, what the backend does now, and the commands that put it back or accept it. */
function lostOverrideLine(ctx: Context, l: LostOverride): string {
  const { cluster } = ctx.parts;
  const o = l.override;
  const recorded = [o.enabled !== undefined ? (o.enabled ? 'enabled' : 'disabled') : '', o.writable !== undefined ? (o.writable ? 'taking writes' : 'taking no writes') : '']
    .filter(Boolean)
    .join(' and ');
  const by = [o.by ? `by ${o.by}` : '', o.at ? `at ${isoTime(o.at)}` : ''].filter(Boolean).join(' ');
  const fix: string[] = [];
  const accept: string[] = [];
  const enabledNow = cluster.isEnabled(l.backend);
  const writableNow = cluster.isWritable(l.backend);
  if (o.enabled !== undefined && enabledNow !== o.enabled) {
    fix.push(`githa backend ${o.enabled ? 'enable' : 'disable'} ${l.backend}`);
    accept.push(`githa backend ${enabledNow ? 'enable' : 'disable'} ${l.backend}`);
  }
  if (o.writable !== undefined && writableNow !== o.writable) {
    fix.push(`githa backend ${o.writable ? 'allow-writes' : 'prevent-writes'} ${l.backend}`);
    accept.push(`githa backend ${writableNow ? 'allow-writes' : 'prevent-writes'} ${l.backend}`);
  }
  const now = `enabled: ${enabledNow ? 'yes' : 'no'}, writable: ${writableNow ? 'yes' : 'no'}`;
  return (
    `warning: ${ctx.config.backendOverridesFile} records ${l.backend} ${recorded}${by ? ` (${by})` : ''}, but Redis holds no such override ` +
    `(Redis lost its data or was restored from an older snapshot): ${l.backend} runs as configured now (${now}). ` +
    (fix.length > 0
      ? `Apply it again with: ${fix.join('; ')}; or keep it as it is (and update the file) with: ${accept.join('; ')}`
      : `It runs as recorded anyway; any githa backend command on ${l.backend} updates the file`)
  );
}
