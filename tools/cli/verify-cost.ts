#!/usr/bin/env node
/**
 * `node dist-tools/tools/cli/verify-cost.js [--repos N] [--per-second X]`:
 * what one verifier sweep costs (tools/bench/verify-cost.ts; the figures are
 * in docs/config.md "verify").
 */
import { parseArgs } from 'node:util';
import { formatVerifyCost, measureVerifyCost } from '../bench/verify-cost.js';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { repos: { type: 'string', default: '1000' }, 'per-second': { type: 'string' }, concurrency: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    process.stdout.write('usage: node dist-tools/tools/cli/verify-cost.js [--repos N (default 1000)] [--per-second X (default: verify.perSecond\'s default)]\n');
    return 0;
  }
  const repos = Number(values.repos);
  const perSecond = values['per-second'] !== undefined ? Number(values['per-second']) : undefined;
  if (!Number.isInteger(repos) || repos < 1 || (perSecond !== undefined && !(perSecond > 0))) {
    process.stderr.write('verify-cost: --repos takes a positive integer, --per-second a positive number\n');
    return 2;
  }
  const concurrency = values.concurrency !== undefined ? Number(values.concurrency) : undefined;
  const cost = await measureVerifyCost({ repos, perSecond, concurrency, out: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(`${formatVerifyCost(cost).join('\n')}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`verify-cost: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}${err instanceof Error && err.cause ? ` (cause: ${String(err.cause)})` : ''}\n`);
    process.exit(2);
  },
);
