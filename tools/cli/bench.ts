#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [--only F1,F3] [--runs N] [--size MB] [--keep]`:
 * githa against direct access to its stock backends, every figure a ratio
 * against a baseline measured in the same run, interleaved (tools/bench/,
 * docs/performance.md). Prints a table and writes bench/results.json.
 *
 *   --quick     about 2 minutes: a ~20 MB repository, fewer runs, every figure
 *   --only L    comma-separated figures: F1 F1s F2 F3 F4 F5 F6 F7 RT IDLE
 *   --runs N    interleaved pairs for F1, F1s, F3, F5 (default 5; quick 2)
 *   --size MB   packed size of the synthetic repository (default 200; quick 20)
 *   --keep      keep the cluster directory (configs, githa and server logs)
 *   --cpu-prof  V8 CPU profiles of the githa processes in bench/.cache/profiles/
 *               (open in Chrome DevTools; profiling slows githa: ratios then mean little)
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR, FIGURES, runBench } from '../bench/runner.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      runs: { type: 'string' },
      size: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run bench -- [--quick] [--only F1,F1s,F2,F3,F4,F5,F6,F7,RT,IDLE] [--runs N] [--size MB] [--keep] [--cpu-prof]\n');
    return 0;
  }
  const quick = values.quick ?? false;
  const only = new Set((values.only ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  const unknown = [...only].filter((f) => !(FIGURES as readonly string[]).includes(f));
  const runs = Number(values.runs ?? (quick ? 2 : 5));
  const sizeMb = Number(values.size ?? (quick ? 20 : 200));
  if (unknown.length > 0 || !Number.isInteger(runs) || runs < 1 || !Number.isInteger(sizeMb) || sizeMb < 1) {
    process.stderr.write(`bench: ${unknown.length ? `unknown figure(s) ${unknown.join(', ')} (have ${FIGURES.join(', ')})` : '--runs and --size take positive integers'}\n`);
    return 2;
  }
  const { rows } = await runBench({
    quick,
    only,
    runs,
    sizeMb,
    keep: values.keep ?? false,
    cpuProfDir: values['cpu-prof'] ? join(BENCH_DIR, '.cache', 'profiles') : undefined,
    cacheDir: join(BENCH_DIR, '.cache'),
    out: (line) => process.stdout.write(`${line}\n`),
  });
  return rows.some((r) => r.result.startsWith('FAILED')) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
