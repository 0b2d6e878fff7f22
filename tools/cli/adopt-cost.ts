#!/usr/bin/env node
/**
 * `node dist-tools/tools/cli/adopt-cost.js [--repos N] [--concurrency C] [--admin]`:
 * what adopting existing repositories costs (tools/bench/adopt-cost.ts; the
 * figures are in docs/performance.md "Adoption").
 */
import { parseArgs } from 'node:util';
import { formatAdminAdoptCost, formatAdoptCost, measureAdminAdoptCost, measureAdoptCost } from '../bench/adopt-cost.js';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { repos: { type: 'string', default: '1000' }, concurrency: { type: 'string' }, admin: { type: 'boolean', default: false } } });
  const repos = Number(values.repos);
  const concurrency = values.concurrency !== undefined ? Number(values.concurrency) : undefined;
  if (!Number.isInteger(repos) || repos < 2 || (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency > 0))) {
    process.stderr.write('adopt-cost: --repos takes an integer >= 2, --concurrency a positive integer\n');
    return 2;
  }
  if (values.admin) {
    const c = await measureAdminAdoptCost({ repos, out: (l) => process.stderr.write(`${l}\n`) });
    process.stdout.write(`${formatAdminAdoptCost(c).join('\n')}\n`);
    return 0;
  }
  const cost = await measureAdoptCost({ repos, concurrency, out: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(`${formatAdoptCost(cost).join('\n')}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`adopt-cost: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
