/**
 * `githa dataloss`: repositories whose newest version is on fewer enabled
 * backends than `replication.writeQuorum` (losing those copies loses it), and
 * what the other backends lack: stale since when (per the push log), drifted,
 * disabled. Exit 1 when there is any. Then the commits repairs kept
 * (refs/githa/kept/…, from a leader's listing of each repository in
 * githa:kept) and how to drop them; they are safe, so they do not change the
 * exit status.
 */
import type { Command } from 'commander';
import { scoped } from '../../cluster/assignment.js';
import { collectStatus } from '../../cluster/cluster-status.js';
import { EXIT, json, table } from '../output.js';
import { common, isoTime, run, type Context } from './context.js';
import { keptLines, keptOf } from './kept-refs.js';

export function register(program: Command): void {
  common(program.command('dataloss'))
    .description('repositories whose newest version is on fewer backends than the write quorum; exit 1 when any')
    .action((opts: { config?: string; json?: boolean }) => run(opts, (ctx) => dataloss(ctx, opts.json === true)));
}

interface Lack {
  backend: string;
  /**
   * stale: below the newest version; drifted: changed outside githa; disabled: leads but an operator disabled it;
   * removed: assigned but not in the configuration (githa cannot read its copy: docs/operations.md "Retiring a backend").
   */
  kind: 'stale' | 'drifted' | 'disabled' | 'missing' | 'removed';
  version: number;
  /** Since when (epoch ms): the first version it lacks was recorded, or the drift was seen. */
  since?: number | undefined;
  health: string;
}

interface AtRisk {
  repo: string;
  version: number;
  /** Enabled backends holding the newest version. */
  holders: string[];
  writeQuorum: number;
  lacking: Lack[];
}

async function dataloss(ctx: Context, asJson: boolean): Promise<number> {
  const { cluster, state: st } = ctx.parts;
  const quorum = ctx.config.replication.writeQuorum;
  const status = await collectStatus(cluster, st, ctx.health);
  const health = (id: string): string => {
    const h = ctx.health.get(id);
    return h ? (h.up ? 'up' : 'down') : 'unknown';
  };
  const found: AtRisk[] = [];
  for (const r of status.repositories) {
    if (r.version === 0) continue; // no version recorded (ambiguous before adoption): `githa status` shows it
    const holders = r.leaders.filter((b) => cluster.isEnabled(b)).sort();
    // Its own quorum: a majority of its assignment unless set (docs/architecture.md "Replication factor").
    const need = r.writeQuorum ?? quorum;
    if (holders.length >= need) continue;
    const state = await st.repos.read(r.repo);
    const entries = await st.pushLog.read(r.repo, { oldestFirst: true });
    /** When the first version above `v` was recorded. */
    const firstAbove = (v: number): number | undefined => {
      for (const e of entries) if (Number(e.fields.version ?? 0) > v) return e.at;
      return undefined;
    };
    const lacking: Lack[] = [];
    // Only assigned backends can lack it.
    for (const b of scoped(state, ctx.config.backends)) {
      if (holders.includes(b.id)) continue;
      const version = state.versions.get(b.id) ?? 0;
      const drift = state.drift.get(b.id);
      if (drift) lacking.push({ backend: b.id, kind: 'drifted', version, since: drift.at, health: health(b.id) });
      else if (r.leaders.includes(b.id)) lacking.push({ backend: b.id, kind: 'disabled', version, health: health(b.id) });
      else if (!cluster.isEnabled(b.id)) continue; // neither holds it nor counts
      else lacking.push({ backend: b.id, kind: version === 0 ? 'missing' : 'stale', version, since: firstAbove(version), health: health(b.id) });
    }
    for (const id of state.assigned ?? []) {
      if (!ctx.config.backends.some((b) => b.id === id)) lacking.push({ backend: id, kind: 'removed', version: state.versions.get(id) ?? 0, health: 'unknown' });
    }
    found.push({ repo: r.repo, version: r.version, holders, writeQuorum: need, lacking });
  }
  // Kept commits: githa:kept names the repositories a repair kept refs in; a leader's listing says which are still there.
  const kept: { repo: string; refs: { ref: string; oid: string }[] }[] = [];
  for (const repo of await st.index.keptRepositories()) {
    const refs = await keptOf(ctx, repo, await st.repos.read(repo));
    if (refs === undefined) continue; // no leader answered: the hint stays
    if (refs.length === 0) await st.index.forgetKept(repo).catch(() => {});
    else kept.push({ repo, refs: refs.map((r) => ({ ref: r.name, oid: r.oid })) });
  }
  if (asJson) {
    ctx.streams.out.write(json({ writeQuorum: quorum, repositories: found, kept }));
    return found.length > 0 ? EXIT.ATTENTION : EXIT.OK;
  }
  const out = ctx.streams.out;
  const keptText = kept.flatMap((k) => keptLines(k.repo, k.refs.map((r) => ({ name: r.ref, oid: r.oid })))).map((l) => `${l}\n`).join('');
  if (found.length === 0) {
    out.write(`no repository at risk: every newest version is on at least its write quorum of enabled backends (${status.repositories.length} repositories)\n`);
    out.write(keptText);
    return EXIT.OK;
  }
  out.write(
    table(
      found.map((r) => ({
        repository: r.repo,
        version: r.version,
        'only on': r.holders.length > 0 ? `${r.holders.join(',')} (${r.holders.length} of ${r.writeQuorum})` : `none (0 of ${r.writeQuorum})`,
        lacking: r.lacking
          .map((l) => {
            const what = l.kind === 'stale' ? `stale at v${l.version}` : l.kind === 'missing' ? 'no copy recorded' : l.kind === 'disabled' ? 'leads but disabled' : l.kind === 'removed' ? `at v${l.version} but not in the configuration` : `drifted from v${l.version}`;
            return `${l.backend} ${what}${l.since ? ` since ${isoTime(l.since)}` : ''}${l.health === 'down' ? ' (down)' : ''}`;
          })
          .join('; '),
      })),
      ['repository', 'version', 'only on', 'lacking'],
    ),
  );
  out.write(`\n${found.length} repositor${found.length === 1 ? 'y has its' : 'ies have their'} newest version on fewer backends than its write quorum\n`);
  out.write(keptText);
  return EXIT.ATTENTION;
}
