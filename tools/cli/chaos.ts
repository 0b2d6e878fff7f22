#!/usr/bin/env node
/**
 * `npm run chaos [-- --seed N --duration S --githas N --keep]`: the
 * randomized fault-injection run and consistency check of issue 8
 * (docs/chaos.md). Prints the report; exits 1 on any violation.
 */
import { parseArgs } from 'node:util';
import { runChaos } from '../chaos/harness.js';
import { formatReport } from '../chaos/report.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      duration: { type: 'string', default: '60' },
      githas: { type: 'string', default: '3' },
      keep: { type: 'boolean', default: false },
    },
  });
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  const duration = Number(values.duration);
  const githas = Number(values.githas);
  if (!Number.isInteger(seed) || seed < 0) throw new Error('--seed must be a non-negative integer');
  if (!(duration > 0 && duration <= 24 * 3600)) throw new Error('--duration must be a number of seconds');
  if (!Number.isInteger(githas) || githas < 2 || githas > 3) throw new Error('--githas must be 2 or 3');
  const result = await runChaos({
    seed,
    durationMs: duration * 1000,
    githas,
    keep: values.keep,
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${formatReport(result)}\n`);
  return result.violations.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
