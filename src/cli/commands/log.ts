/**
 * `githa log R`: the push log of one repository (pushes, catch-ups,
 * adoptions, resolutions, drift, recoveries), newest last.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { canonicalRepositoryName } from '../../protocol/repository-name.js';
import { EXIT, json, table } from '../output.js';
import { common, isoTime, run, type Context } from './context.js';

interface LogOptions {
  config?: string;
  json?: boolean;
  since?: number;
  user?: string;
  limit: number;
}

const ZERO = /^0+$/;

export function register(program: Command): void {
  common(program.command('log'))
    .description('the push log of a repository, newest last')
    .argument('<repository>', 'repository, e.g. team/app.git')
    .option('--since <when>', 'only entries after this: an ISO date, or an age such as 10m, 2h, 3d', parseSince)
    .option('--user <name>', 'only entries of this user (pushes, resolved writes)')
    .option('--limit <n>', 'at most this many entries (the newest)', parseLimit, 100)
    .action((name: string, opts: LogOptions) => run(opts, (ctx) => log(ctx, name, opts)));
}

/** An ISO date or an age (`30s`, `10m`, `2h`, `3d`) as epoch ms. */
export function parseSince(value: string, now = Date.now()): number {
  const age = /^(\d+)\s*(s|m|h|d)$/.exec(value.trim());
  if (age) return now - Number(age[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 's' | 'm' | 'h' | 'd'];
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value.trim()) ? Date.parse(value.trim()) : NaN;
  if (!Number.isFinite(ms)) throw new InvalidArgumentError('expected an ISO date (2026-01-31, 2026-01-31T12:00:00Z) or an age such as 10m, 2h, 3d');
  return ms;
}

function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

async function log(ctx: Context, raw: string, opts: LogOptions): Promise<number> {
  const name = canonicalRepositoryName(raw);
  const { redis, state: st } = ctx.parts;
  // The log is capped (10,000 entries): newest first, filtered, then the newest `limit` shown oldest first.
  const [entries, known] = await Promise.all([
    st.pushLog.read(name, opts.since !== undefined ? { sinceMs: opts.since } : {}),
    redis.zscore(st.keys.repos(), name),
  ]);
  if (known === null && entries.length === 0 && opts.since === undefined) {
    ctx.streams.err.write(`githa: repository ${name} is not known to githa (no push log in Redis)\n`);
    return EXIT.ATTENTION;
  }
  const picked = entries
    .filter(({ fields: f }) => opts.user === undefined || f.user === opts.user || f.writer === opts.user)
    .slice(0, opts.limit)
    .reverse();
  if (opts.json) {
    ctx.streams.out.write(json(picked.map((e) => ({ id: e.id, at: isoTime(e.at), ...e.fields }))));
    return EXIT.OK;
  }
  if (picked.length === 0) {
    ctx.streams.out.write(`no entries in the push log of ${name}${opts.since !== undefined || opts.user !== undefined ? ' that match' : ''}\n`);
    return EXIT.OK;
  }
  ctx.streams.out.write(
    table(
      picked.map((e) => {
        const f = e.fields;
        return {
          time: isoTime(e.at),
          version: f.version,
          backend: f.backend,
          event: f.event,
          user: f.user ?? f.writer,
          transport: f.transport,
          ip: f.ip,
          refs: f.refs ? refUpdates(f.refs) : undefined,
          bytes: f.bytes,
          duration: f.durationMs !== undefined ? `${f.durationMs}ms` : undefined,
          detail: detail(f),
        };
      }),
      ['time', 'version', 'backend', 'event', 'user', 'transport', 'ip', 'refs', 'bytes', 'duration', 'detail'],
    ),
  );
  return EXIT.OK;
}

/** `"<old> <new> <ref>"` lines as `main 1a2b3c4→5d6e7f8` (new: `+`, deleted: `-`). */
export function refUpdates(lines: string): string {
  return lines
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((line) => {
      const [oldOid = '', newOid = '', ref = ''] = line.split(' ');
      const short = ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : ref;
      if (ZERO.test(oldOid)) return `${short} +${newOid.slice(0, 7)}`;
      if (ZERO.test(newOid)) return `${short} -${oldOid.slice(0, 7)}`;
      return `${short} ${oldOid.slice(0, 7)}→${newOid.slice(0, 7)}`;
    })
    .join(', ');
}

function detail(f: Record<string, string>): string | undefined {
  const parts: string[] = [];
  if (f.copies) parts.push(`copies ${f.copies}`);
  if (f.source) parts.push(`from ${f.source}`);
  if (f.proxy && f.event !== 'push') parts.push(`via ${f.proxy}`);
  if (f.checksum) parts.push(`checksum ${f.checksum.slice(0, 12)}`);
  if (f.detail) parts.push(f.detail);
  return parts.length > 0 ? parts.join('; ') : undefined;
}
