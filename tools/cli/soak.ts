#!/usr/bin/env node
/**
 * `npm run soak [-- --duration S --baseline S --workers N --keep]`: the soak
 * test of issue 19's acceptance (docs/security.md "Soak test"). Prints the
 * figures; exits 1 when a goal is missed, 2 when the run itself failed.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { fmtMs } from '../bench/stats.js';
import { runSoak } from '../soak/run.js';
import { goals, type LatencySummary } from '../soak/summary.js';

const line = (name: string, s: LatencySummary): string => `${name}: ${s.count} operations (${s.failed} failed), p50 ${fmtMs(s.p50)}, p99 ${fmtMs(s.p99)}`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '600' },
      baseline: { type: 'string', default: '60' },
      workers: { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        'usage: node dist-tools/tools/cli/soak.js [--duration S] [--baseline S] [--workers N] [--keep]',
        '  --duration S  seconds of phase B, legitimate load under the attacks of issue 19 items 1-6 (default 600)',
        '  --baseline S  seconds of phase A, legitimate load alone (default 60)',
        '  --workers N   legitimate clients, each cloning, fetching and pushing over HTTP, SSH and git:// (default 2)',
        '  --keep        keep the temporary directory (githa log, configs)',
        '',
      ].join('\n'),
    );
    return 0;
  }
  const duration = Number(values.duration);
  const baseline = Number(values.baseline);
  const workers = Number(values.workers);
  if (!(duration > 0 && duration <= 24 * 3600)) throw new Error('--duration must be a number of seconds');
  if (!(baseline > 0 && baseline <= 3600)) throw new Error('--baseline must be a number of seconds');
  if (!Number.isInteger(workers) || workers < 1 || workers > 8) throw new Error('--workers must be 1..8');
  const r = await runSoak({ baselineMs: baseline * 1000, durationMs: duration * 1000, workers, keep: values.keep, progress: (l) => process.stderr.write(`soak: ${l}\n`) });
  const f = r.figures;
  const out: string[] = [
    `# githa soak: phase A ${baseline} s, phase B ${duration} s, ${workers} workers, ${cpus().length} CPUs`,
    line('A (unloaded)', f.baseline),
    line('B (attacked)', f.attacked),
    '',
    'per operation kind (A | B):',
    ...r.byKind.B.map(([kind, b]) => {
      const a = r.byKind.A.find(([k]) => k === kind)?.[1];
      return `  ${kind.padEnd(10)} p50 ${a ? fmtMs(a.p50) : 'n/a'} | ${fmtMs(b.p50)}   p99 ${a ? fmtMs(a.p99) : 'n/a'} | ${fmtMs(b.p99)}   n ${a?.count ?? 0} | ${b.count}`;
    }),
    '',
    `githa peak RSS: A ${(r.rss.baselinePeak / 1048576).toFixed(0)} MiB, B ${(r.rss.attackPeak / 1048576).toFixed(0)} MiB`,
    `githa's held bytes for clients (githa_held_bytes): peak ${(r.held.peak / 1048576).toFixed(0)} MiB of ${(r.held.limit / 1048576).toFixed(0)} MiB`,
    `idle git:// connections closed by githa: ${r.idleGitClosed}`,
    'attacks (attempts / refused or cut as the attacker saw it):',
    ...Object.entries(r.attacks).map(([k, s]) => `  ${k}: ${s.attempts} / ${s.refusedSeen}`),
    '',
    'goals:',
    ...goals(f).map((g) => `  [${g.met ? 'ok' : 'MISSED'}] ${g.name}: ${g.detail}`),
  ];
  if (r.failures.length) out.push('', 'failed legitimate operations (first 10):', ...r.failures.slice(0, 10).map((x) => `  ${x.phase} ${x.kind}: ${x.error}`));
  if (values.keep) out.push('', `kept: ${r.dir}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return goals(f).every((g) => g.met) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
