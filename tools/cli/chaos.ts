#!/usr/bin/env node
/**
 * `npm run chaos [-- --seed N --duration S --githas N --faults K,… --backends N --factor N --moves on --keep]`:
 * the randomized fault-injection run and consistency check of issues 8 and
 * 16 (docs/chaos.md). Prints the report; exits 1 on any violation.
 */
import { parseArgs } from 'node:util';
import { ALL_FAULTS, COPY_FAULTS, OUTAGE_FAULTS, runChaos } from '../chaos/harness.js';
import type { FaultKind } from '../chaos/history.js';
import { formatReport } from '../chaos/report.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      duration: { type: 'string', default: '60' },
      githas: { type: 'string', default: '3' },
      keep: { type: 'boolean', default: false },
      faults: { type: 'string', default: 'all' },
      'fan-out': { type: 'string', default: 'on' },
      backends: { type: 'string', default: '3' },
      factor: { type: 'string' },
      moves: { type: 'string', default: 'off' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        'usage: node dist-tools/tools/cli/chaos.js [--seed N] [--duration S] [--githas 2|3] [--faults LIST] [--fan-out on|off]',
        '         [--backends 3-5] [--factor N] [--moves on|off] [--keep]',
        '  --seed N      the fault and workload schedule (default: random; the report names it)',
        '  --duration S  seconds of workload and faults (default 60)',
        '  --githas N    githa processes (default 3)',
        '  --faults LIST comma-separated fault kinds, or the groups all, outage, copy (default all);',
        `                outage: ${OUTAGE_FAULTS.join(', ')}`,
        `                copy:   ${COPY_FAULTS.join(', ')}`,
        '  --fan-out X   replication.fanOut of every githa: on (default) or off',
        '  --backends N  stock backends, 3 to 5 (default 3; transports cycle: http+ssh, http+git, ssh+git)',
        '  --factor N    replication.factor, 2 to --backends (default: none, every backend holds every repository)',
        '  --moves X     on: githa move (and rebalance --max-moves 1) at random times during the run (needs --factor)',
        '  --keep        keep the temporary directory even without a violation',
        '',
      ].join('\n'),
    );
    return 0;
  }
  const faults = parseFaults(values.faults);
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  const duration = Number(values.duration);
  const githas = Number(values.githas);
  if (!Number.isInteger(seed) || seed < 0) throw new Error('--seed must be a non-negative integer');
  if (!(duration > 0 && duration <= 24 * 3600)) throw new Error('--duration must be a number of seconds');
  if (!Number.isInteger(githas) || githas < 2 || githas > 3) throw new Error('--githas must be 2 or 3');
  if (values['fan-out'] !== 'on' && values['fan-out'] !== 'off') throw new Error('--fan-out must be on or off');
  const backends = Number(values.backends);
  if (!Number.isInteger(backends) || backends < 3 || backends > 5) throw new Error('--backends must be 3, 4 or 5');
  const factor = values.factor === undefined ? undefined : Number(values.factor);
  if (factor !== undefined && !(Number.isInteger(factor) && factor >= 2 && factor <= backends)) throw new Error(`--factor must be 2 to ${backends}`);
  if (values.moves !== 'on' && values.moves !== 'off') throw new Error('--moves must be on or off');
  if (values.moves === 'on' && (factor === undefined || factor === backends)) throw new Error('--moves on needs --factor below --backends (a copy moves to a backend not holding it)');
  const result = await runChaos({
    seed,
    durationMs: duration * 1000,
    githas,
    keep: values.keep,
    faults,
    fanOut: values['fan-out'] === 'on',
    backends,
    ...(factor !== undefined ? { factor } : {}),
    moves: values.moves === 'on',
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${formatReport(result)}\n`);
  return result.violations.length === 0 ? 0 : 1;
}

function parseFaults(list: string): FaultKind[] {
  const groups: Record<string, readonly FaultKind[]> = { all: ALL_FAULTS, outage: OUTAGE_FAULTS, copy: COPY_FAULTS };
  const out = new Set<FaultKind>();
  for (const word of list.split(',').map((w) => w.trim()).filter(Boolean)) {
    const group = groups[word];
    if (group) group.forEach((k) => out.add(k));
    else if ((ALL_FAULTS as readonly string[]).includes(word)) out.add(word as FaultKind);
    else throw new Error(`--faults: unknown fault ${JSON.stringify(word)} (have ${ALL_FAULTS.join(', ')}, or all, outage, copy)`);
  }
  return [...out];
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
