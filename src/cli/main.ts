#!/usr/bin/env node
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { GithaError } from '../errors.js';
import { buildCluster, startGitha } from '../githa.js';
import { recoverRepository } from '../cluster/recovery.js';
import { canonicalRepositoryName } from '../protocol/repository-name.js';
import type { StateStore } from '../state/store.js';
import { createLogger } from '../log.js';
import { runDemo } from './demo.js';

/**
 * The githa command line: the only place that prints to stdout or exits.
 */
const program = new Command();
program.name('githa').description('A Git-aware reverse proxy that makes several stock Git servers one highly available Git service').version('0.1.0');

program
  .command('serve')
  .description('run the proxy (smart HTTP front end and admin listener)')
  .option('-c, --config <file>', 'configuration file (or GITHA_CONFIG)')
  .action(async (opts: { config?: string }) => {
    const config = loadConfig(opts.config);
    const log = createLogger(config.log.level);
    const githa = await startGitha(config, log);
    const stop = (): void => {
      log.info('stopping');
      githa.close().then(() => process.exit(0), () => process.exit(1));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program
  .command('recover')
  .description('rebuild repository records from the backends\' checksums (after Redis lost its state); equal copies lead together, differing ones are frozen as ambiguous')
  .argument('[repositories...]', 'repositories to rebuild (default: every repository githa knows)')
  .option('-c, --config <file>', 'configuration file (or GITHA_CONFIG)')
  .option('--json', 'print one JSON object per repository')
  .action(async (repos: string[], opts: { config?: string; json?: boolean }) => {
    const config = loadConfig(opts.config);
    const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level);
    const parts = buildCluster(config, log);
    let bad = 0;
    try {
      const names = repos.length > 0 ? repos.map((r) => canonicalRepositoryName(r)) : await allRepositories(parts.store);
      if (names.length === 0 && !opts.json) process.stdout.write('no repositories known: name them (githa recover team/app.git …)\n');
      for (const repo of names) {
        const r = await recoverRepository(parts.cluster, repo);
        if (r.status !== 'recovered' && r.status !== 'intact') bad++;
        if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else if (r.status === 'recovered') process.stdout.write(`${repo}\trecovered\tversion ${r.version}\tleaders ${r.backends.join(',')}\n`);
        else if (r.status === 'intact') process.stdout.write(`${repo}\tintact\tversion ${r.version}\tleaders ${r.leaders.join(',')} (stale copies catch up)\n`);
        else if (r.status === 'ambiguous') {
          const copies = Object.entries(r.copies).map(([b, c]) => `${b}=${c.slice(0, 12)}`).join(' ');
          process.stdout.write(`${repo}\tAMBIGUOUS\tfrozen; copies differ: ${copies}; choose one with: githa thaw ${repo} --promote <backend>\n`);
        } else process.stdout.write(`${repo}\tskipped\t${r.reason}\n`);
      }
    } finally {
      await parts.close();
    }
    process.exit(bad > 0 ? 1 : 0);
  });

program
  .command('demo')
  .description('start a demo cluster on this machine: redis-server, three stock Git backends and one githa')
  .option('--dir <dir>', 'keep the demo state in this directory between runs')
  .option('--json', 'print the facts as JSON')
  .action(async (opts: { dir?: string; json?: boolean }) => {
    await runDemo(opts);
  });

async function allRepositories(store: StateStore): Promise<string[]> {
  const names: string[] = [];
  for await (const page of store.repositories()) names.push(...page);
  return names.sort();
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof GithaError) {
    process.stderr.write(`githa: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`githa: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
