/**
 * `githa backend list | prevent-writes B | allow-writes B | disable B [--maintenance] | enable B`
 * (`drain B` / `undrain B`: src/cli/commands/move.ts):
 * runtime overrides of a backend's configured `enabled` / `writable`, stored
 * in Redis (src/state/overrides.ts) and applied by every serving githa at
 * once: the command publishes the change and waits (bounded) until every
 * githa that received it answers that it is in force.
 */
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { connectRedis } from '../../state/redis.js';
import { effectiveOverrides, listenForAcks, type OverrideFlag } from '../../state/overrides.js';
import { lostOverrides, readOverridesFile, writeOverridesFile, type LostOverride } from '../../state/overrides-file.js';
import { EXIT, json, table } from '../output.js';
import { common, Exit, isoTime, run, type Context } from './context.js';

/** How long a change waits for every serving githa's answer. */
const ACK_WAIT_MS = 5_000;

const CHANGES: Record<string, { flag: OverrideFlag; value: boolean; done: string; help: string }> = {
  'prevent-writes': { flag: 'writable', value: false, done: 'takes no writes', help: 'stop sending writes to a backend (it still serves reads and gets copies)' },
  'allow-writes': { flag: 'writable', value: true, done: 'takes writes', help: 'let a backend take writes again' },
  disable: { flag: 'enabled', value: false, done: 'disabled', help: 'stop routing anything to a backend (reads, writes, copies)' },
  enable: { flag: 'enabled', value: true, done: 'enabled', help: 'route to a backend again' },
};

export function register(program: Command): void {
  const backend = program.command('backend').description('list backends, or change one at runtime for every githa (stored in Redis)');
  common(backend.command('list'))
    .description('every backend: configured and effective flags, overrides, health')
    .action((opts: { config?: string; json?: boolean }) => run(opts, (ctx) => list(ctx, opts.json === true)));
  for (const [name, change] of Object.entries(CHANGES)) {
    const cmd = common(backend.command(name)).description(change.help).argument('<backend>', 'backend id');
    // docs/architecture.md "Re-replication": a backend disabled for maintenance is coming back; its repositories are not copied elsewhere.
    if (name === 'disable') cmd.option('--maintenance', 'planned maintenance: the backend is coming back, so its repositories are not re-replicated elsewhere while it is away');
    cmd.action((id: string, opts: { config?: string; json?: boolean; maintenance?: boolean }) =>
      run(opts, (ctx) => apply(ctx, id, change.flag, change.value, change.done + (opts.maintenance ? ' for maintenance' : ''), opts.json === true, opts.maintenance === true)),
    );
  }
}

function rows(ctx: Context) {
  const { cluster } = ctx.parts;
  return ctx.config.backends.map((b) => {
    const o = ctx.stored.get(b.id);
    const h = ctx.health.get(b.id);
    return {
      id: b.id,
      zone: b.zone,
      enabled: cluster.isEnabled(b.id),
      writable: cluster.isWritable(b.id),
      draining: o?.drain === true,
      configured: { enabled: b.enabled, writable: b.writable },
      override: o ? { enabled: o.enabled, writable: o.writable, by: o.by, at: o.at } : undefined,
      maintenance: o?.maintenance === true,
      health: h ? (h.up ? 'up' : 'down') : 'unknown',
      healthDetail: h?.detail,
      endpoints: [b.http ? 'http' : '', b.ssh ? 'ssh' : '', b.git ? 'git' : ''].filter((e) => e.length > 0),
    };
  });
}

/**
 * Backend ids not in the configuration that placement's counts (`githa:placement`, a hint) still give repositories:
 * removed while assigned (docs/operations.md "Retiring a backend"). One HGETALL; `githa status` counts them exactly.
 */
async function unconfigured(ctx: Context): Promise<Array<{ id: string; repos: number }>> {
  const usage = await ctx.parts.state.usage.read();
  return [...usage].filter(([id, u]) => u.repos > 0 && !ctx.config.backends.some((b) => b.id === id)).map(([id, u]) => ({ id, repos: u.repos }));
}

async function list(ctx: Context, asJson: boolean): Promise<number> {
  const all = rows(ctx);
  const removed = await unconfigured(ctx);
  if (asJson) {
    ctx.streams.out.write(json({ writeQuorum: ctx.config.replication.writeQuorum, backends: all, ...(removed.length > 0 ? { unconfigured: removed } : {}) }));
  } else {
    const flag = (effective: boolean, overridden: boolean | undefined): string => `${effective ? 'yes' : 'no'}${overridden !== undefined ? ' (override)' : ''}`;
    ctx.streams.out.write(
      table(
        all.map((b) => ({
          backend: b.id,
          zone: b.zone,
          enabled: flag(b.enabled, b.override?.enabled) + (b.maintenance ? ', maintenance' : ''),
          writable: flag(b.writable, b.override?.writable),
          drained: b.draining ? 'yes' : undefined,
          health: b.health,
          endpoints: b.endpoints.join(','),
          'changed by': b.override?.by,
          'changed at': isoTime(b.override?.at),
          detail: b.healthDetail,
        })),
        ['backend', 'zone', 'enabled', 'writable', 'drained', 'health', 'endpoints', 'changed by', 'changed at', 'detail'],
      ),
    );
  }
  const warning = quorumWarning(ctx);
  if (warning && !asJson) ctx.streams.out.write(`warning: ${warning}\n`);
  for (const r of asJson ? [] : removed) {
    ctx.streams.out.write(`warning: ${r.id} is not in the configuration but about ${r.repos} repositor${r.repos === 1 ? 'y is' : 'ies are'} still assigned to it (githa status counts them; re-replication replaces it)\n`);
  }
  return warning || removed.length > 0 || all.some((b) => b.enabled && b.health === 'down') ? EXIT.ATTENTION : EXIT.OK;
}

/** A warning when fewer backends are enabled than the write quorum (writes are then refused). */
function quorumWarning(ctx: Context): string | undefined {
  const enabled = ctx.parts.cluster.activeBackends().map((b) => b.id);
  const quorum = ctx.config.replication.writeQuorum;
  if (enabled.length >= quorum) return undefined;
  return `${enabled.length} of ${ctx.config.backends.length} backends enabled (${enabled.join(', ') || 'none'}) and replication.writeQuorum is ${quorum}: every write will be refused until enough are enabled again; reads go on`;
}

function operator(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (a container): keep $USER
  }
  return `${user}@${hostname()}`;
}

export async function apply(ctx: Context, id: string, flag: OverrideFlag, value: boolean, done: string, asJson: boolean, maintenance = false): Promise<number> {
  const { overrides, config } = ctx;
  overrides.check(id);
  const sub = connectRedis(config.redis, { commandTimeoutMs: config.redis.commandTimeoutMs });
  try {
    const acks = await listenForAcks(sub, overrides.keys, Math.min(config.redis.commandTimeoutMs, 5_000));
    const by = operator();
    const { nonce, receivers } = await overrides.set(id, flag, value, by, maintenance);
    const appliedBy = receivers > 0 ? await acks.wait(nonce, receivers, ACK_WAIT_MS) : [];
    // The cluster as the githas now see it.
    ctx.stored = await overrides.readAll();
    ctx.parts.cluster.setOverrides(effectiveOverrides(ctx.stored));
    // The local copy `githa status` checks Redis against after Redis lost its data (src/state/overrides-file.ts).
    // Overrides of other backends the file records and Redis lost (`githa status` warns of them) stay in it: this change
    // must not erase the only record of them (docs/operations.md "Redis lost or restored from an old snapshot").
    let kept: LostOverride[] = [];
    if (config.backendOverridesFile) {
      try {
        kept = lostOverrides(readOverridesFile(config.backendOverridesFile), ctx.stored).filter((l) => l.backend !== id && config.backends.some((b) => b.id === l.backend));
      } catch {
        // Not githa's JSON: replaced by what Redis holds.
      }
      try {
        writeOverridesFile(config.backendOverridesFile, new Map([...ctx.stored, ...kept.map((l) => [l.backend, l.override] as const)]));
      } catch (err) {
        throw new Exit(EXIT.ATTENTION, `${id} ${done} in Redis, but backendOverridesFile ${config.backendOverridesFile} could not be written: ${(err as Error).message}`);
      }
    }
    const warning = flag === 'enabled' ? quorumWarning(ctx) : undefined;
    const missing = receivers - appliedBy.length;
    const row = rows(ctx).find((b) => b.id === id)!;
    if (asJson) {
      ctx.streams.out.write(json({ backend: row, change: { [flag]: value, by }, githas: { received: receivers, applied: appliedBy }, warning, lostOverrides: kept }));
    } else {
      const out = ctx.streams.out;
      out.write(`${id} ${done} (enabled: ${row.enabled ? 'yes' : 'no'}, writable: ${row.writable ? 'yes' : 'no'}; changed by ${by})\n`);
      if (receivers === 0) out.write('no githa is serving right now; each applies it when it starts\n');
      else out.write(`in force in ${appliedBy.length} of ${receivers} serving githa process${receivers === 1 ? '' : 'es'}${appliedBy.length > 0 ? ` (${appliedBy.join(', ')})` : ''}\n`);
      if (missing > 0) out.write(`warning: ${missing} githa process${missing === 1 ? '' : 'es'} did not answer within ${ACK_WAIT_MS / 1000} s; they reload overrides every 5 s\n`);
      if (warning) out.write(`warning: ${warning}\n`);
      for (const l of kept) out.write(`warning: ${config.backendOverridesFile} records ${l.backend} ${describeOverride(l.override)}, but Redis holds no such override; kept in the file (see githa status)\n`);
    }
    return warning || missing > 0 || kept.length > 0 ? EXIT.ATTENTION : EXIT.OK;
  } finally {
    sub.disconnect();
  }
}

/** An override's flags in words ("disabled and taking no writes"). */
function describeOverride(o: LostOverride['override']): string {
  return [o.enabled !== undefined ? (o.enabled ? 'enabled' : 'disabled') : '', o.writable !== undefined ? (o.writable ? 'taking writes' : 'taking no writes') : ''].filter(Boolean).join(' and ');
}
