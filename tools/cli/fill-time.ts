#!/usr/bin/env node
/**
 * `node dist-tools/tools/cli/fill-time.js [--repos N | --big-mb M] [--fill-concurrency C]`:
 * how long githa takes to fill a new, empty backend with admin
 * (tools/bench/fill-time.ts; the figures are in docs/performance.md
 * "Filling a new backend").
 */
import { parseArgs } from 'node:util';
import { formatFillTime, measureFillTime } from '../bench/fill-time.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      repos: { type: 'string', default: '1000' },
      'big-mb': { type: 'string' },
      'fill-concurrency': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node dist-tools/tools/cli/fill-time.js [--repos N (default 1000) | --big-mb M (one repository of M MB of random blobs)] [--fill-concurrency C]\n');
    return 0;
  }
  const repos = Number(values.repos);
  const bigMb = values['big-mb'] !== undefined ? Number(values['big-mb']) : undefined;
  const fillConcurrency = values['fill-concurrency'] !== undefined ? Number(values['fill-concurrency']) : undefined;
  const whole = (n: number | undefined): boolean => n === undefined || (Number.isInteger(n) && n >= 1);
  if (!whole(repos) || !whole(bigMb) || !whole(fillConcurrency)) {
    process.stderr.write('fill-time: --repos, --big-mb and --fill-concurrency take positive integers\n');
    return 2;
  }
  const t = await measureFillTime({ repos, bigMb, fillConcurrency, out: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(`${formatFillTime(t).join('\n')}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fill-time: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
