/**
 * `githa repo R`: one repository, backend by backend: version, checksum,
 * leadership, a write in flight or interrupted, the last push each copy got,
 * health, zone, suspect and drift; then the repository's state. Exit 1 when
 * the repository is unknown, or unsynchronized, ambiguous, frozen or drifted.
 */
import type { Command } from 'commander';
import { driftKind, summarize } from '../../cluster/status.js';
import { canonicalRepositoryName } from '../../protocol/repository-name.js';
import { EXIT, json, table } from '../output.js';
import { ago, common, Exit, isoTime, run, type Context } from './context.js';
import { createCommandFor, keptLines, keptOf } from './kept-refs.js';
import { repoFactor } from './repo-factor.js';
import { STATE_LABEL } from './status.js';

/** Push-log entries read to find each backend's last push. */
const LOG_SCAN = 1_000;

/** Push-log events that change a copy's data (not clear-interrupted, drift, …). */
const CHANGES_COPY = new Set(['push', 'catch-up', 'adopt-interrupted', 'adopt-late-write']);

export function register(program: Command): void {
  common(program.command('repo'))
    .description('one repository on every backend: versions, checksums, leaders, writes, health, drift; `repo factor R N` changes its replication factor')
    .argument('<repository>', 'repository, e.g. team/app.git (or `factor`)')
    .argument('[factor...]', 'after `factor`: the repository and its new replication factor')
    .option('--as <name>', 'with factor: operator name recorded in the push log (default: $USER)')
    .action((name: string, more: string[], opts: { config?: string; json?: boolean; as?: string }) =>
      run(opts, (ctx) => {
        if (name === 'factor' && more.length > 0) return repoFactor(ctx, more, opts);
        if (more.length > 0) throw new Exit(EXIT.FAILED, `unexpected arguments after ${name}: ${more.join(' ')}`);
        return repo(ctx, name, opts.json === true);
      }),
    );
}

async function repo(ctx: Context, raw: string, asJson: boolean): Promise<number> {
  const name = canonicalRepositoryName(raw);
  const { cluster, state: st, redis } = ctx.parts;
  const [state, [lastWrite], known, recent] = await Promise.all([
    st.repos.read(name),
    st.index.lastWrites([name]),
    redis.zscore(st.keys.repos(), name),
    st.pushLog.read(name, { count: LOG_SCAN }),
  ]);
  if (state.versions.size === 0 && !state.frozen && !state.writing && known === null && recent.length === 0) {
    ctx.streams.err.write(`githa: repository ${name} is not known to githa (no record in Redis: it has not been used through githa yet)\n`);
    return EXIT.ATTENTION;
  }
  const now = Date.now();
  const active = cluster.activeBackends().map((b) => b.id);
  const summary = summarize(state, active, ctx.config.replication, lastWrite || undefined, now);
  summary.leaders.sort();
  // Each backend's newest change (as the written backend, a quorum copy, or a
  // catch-up) and the user of the push that made that version.
  const pushers = new Map<string, string>();
  for (const { fields: f } of recent) {
    const who = f.event === 'push' ? f.user : f.event === 'adopt-interrupted' ? f.writer : undefined;
    if (f.version && who && !pushers.has(f.version)) pushers.set(f.version, who);
  }
  const lastPush = new Map<string, { user: string | undefined; at: number; version: string; event: string }>();
  for (const { fields: f, at } of recent) {
    if (!CHANGES_COPY.has(f.event ?? '')) continue;
    const holders = [f.backend ?? '', ...(f.copies ? f.copies.split(',') : [])].filter((b) => b.length > 0);
    for (const b of holders) {
      if (!lastPush.has(b)) lastPush.set(b, { user: pushers.get(f.version ?? ''), at, version: f.version ?? '', event: f.event ?? '' });
    }
  }
  const backends = ctx.config.backends.map((b) => {
    const version = state.versions.get(b.id);
    const writing = state.writing?.backend === b.id ? state.writing : undefined;
    const suspectUntil = state.suspect.get(b.id);
    const drift = state.drift.get(b.id);
    const health = ctx.health.get(b.id);
    const push = lastPush.get(b.id);
    return {
      backend: b.id,
      zone: b.zone,
      enabled: cluster.isEnabled(b.id),
      writable: cluster.isWritable(b.id),
      version: version ?? 0,
      checksum: state.checksums.get(b.id),
      leader: summary.leaders.includes(b.id),
      stale: summary.stale.includes(b.id),
      health: health ? (health.up ? 'up' : 'down') : 'unknown',
      healthDetail: health?.detail,
      writing: writing
        ? {
            user: writing.user,
            proxy: writing.proxy,
            transport: writing.transport,
            since: writing.started,
            heartbeat: writing.heartbeat,
            interrupted: !state.locked,
          }
        : undefined,
      lastWriter: push?.user,
      lastWriteAt: push?.at,
      lastEvent: push?.event,
      suspectUntil: suspectUntil && suspectUntil > now ? suspectUntil : undefined,
      drift: drift ? { checksum: drift.checksum, since: drift.at, kind: driftKind(drift) } : undefined,
    };
  });
  // Repairs (docs/operations.md "A copy contradicts its record"): copies missing here, and the commits kept on the leaders.
  const missing = await Promise.all(
    backends.filter((b) => b.drift?.kind === 'missing').map(async (b) => ({ backend: b.backend, command: await createCommandFor(ctx, name, b.backend, state) })),
  );
  const kept = (await keptOf(ctx, name, state)) ?? [];
  const attention = summary.state === 'unsynchronized' || summary.state === 'ambiguous' || summary.state === 'frozen' || summary.drifted.length > 0;
  if (asJson) {
    ctx.streams.out.write(
      json({
        repo: name,
        state: summary.state,
        reason: summary.reason,
        frozen: state.frozen,
        version: summary.version,
        leaders: summary.leaders,
        stale: summary.stale,
        writeQuorum: summary.writeQuorum ?? ctx.config.replication.writeQuorum,
        assigned: state.assigned,
        lastWriteAt: lastWrite || undefined,
        epoch: state.epoch,
        backends,
        missing,
        kept: kept.map((r) => ({ ref: r.name, oid: r.oid })),
      }),
    );
    return attention ? EXIT.ATTENTION : EXIT.OK;
  }
  const out = ctx.streams.out;
  out.write(
    table(
      backends.map((b) => ({
        backend: b.backend,
        zone: b.zone,
        version: b.version || undefined,
        checksum: b.checksum?.slice(0, 12),
        leader: b.leader,
        writing: b.writing
          ? `${b.writing.interrupted ? 'INTERRUPTED' : 'in flight'}: ${b.writing.user} via ${b.writing.proxy} since ${isoTime(b.writing.since)}`
          : undefined,
        'last writer': b.lastWriter,
        'last write': isoTime(b.lastWriteAt),
        health: `${b.health}${b.enabled ? '' : ' (disabled)'}${b.writable ? '' : ' (no writes)'}`,
        suspect: b.suspectUntil ? `until ${isoTime(b.suspectUntil)}` : undefined,
        drift: b.drift ? `${b.drift.kind}${b.drift.checksum === 'missing' ? '' : ` (live ${b.drift.checksum.slice(0, 12)})`} since ${isoTime(b.drift.since)}` : undefined,
      })),
      ['backend', 'zone', 'version', 'checksum', 'leader', 'writing', 'last writer', 'last write', 'health', 'suspect', 'drift'],
    ),
  );
  out.write('\n');
  const leaders = summary.leaders.length > 0 ? `leaders ${summary.leaders.join(',')}` : 'no leader';
  const stale = summary.stale.length > 0 ? `; stale ${summary.stale.join(',')}` : '';
  out.write(`${name}: ${STATE_LABEL[summary.state]}, version ${summary.version}, ${leaders}${stale}; write quorum ${summary.writeQuorum ?? ctx.config.replication.writeQuorum}${state.assigned ? `; assigned ${state.assigned.join(',')}` : ''}\n`);
  if (lastWrite) out.write(`last write: ${isoTime(lastWrite)} (${ago(lastWrite, now)})\n`);
  if (state.frozen) {
    out.write(`frozen: ${state.frozen.reason}${state.frozen.detail ? `: ${state.frozen.detail}` : ''} (since ${isoTime(state.frozen.since)})\n`);
  } else if (state.writing && !state.locked) {
    out.write(`frozen: write-interrupted: a push by ${state.writing.user} to ${state.writing.backend} via ${state.writing.proxy} did not finish; writes are refused until it is resolved\n`);
  }
  for (const m of missing) out.write(`missing on ${m.backend}: githa cannot create repositories; create it with: ${m.command}\n`);
  for (const line of keptLines(name, kept)) out.write(`${line}\n`);
  return attention ? EXIT.ATTENTION : EXIT.OK;
}
