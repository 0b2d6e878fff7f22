#!/usr/bin/env node
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { GithaError } from '../errors.js';
import { startGitha } from '../githa.js';
import { createLogger } from '../log.js';
import { VERSION } from '../version.js';
import { runDemo } from './demo.js';
import { quietOnClosedPipe } from './output.js';
import { register as registerStatus } from './commands/status.js';
import { register as registerRepo } from './commands/repo.js';
import { register as registerLog } from './commands/log.js';
import { register as registerDataloss } from './commands/dataloss.js';
import { register as registerBackend } from './commands/backend.js';
import { register as registerConsole } from './commands/console.js';
import { register as registerRecover } from './commands/recover.js';
import { register as registerThaw } from './commands/thaw.js';
import { register as registerLock } from './commands/lock.js';
import { register as registerSync } from './commands/sync.js';
import { register as registerVerify } from './commands/verify.js';
import { register as registerInventory } from './commands/inventory.js';
import { register as registerLifecycle } from './commands/lifecycle.js';
import { register as registerMove } from './commands/move.js';

/**
 * The githa command line: the only place that prints to stdout or exits.
 */
quietOnClosedPipe();
const program = new Command();
program.name('githa').description('A Git-aware reverse proxy that makes several stock Git servers one highly available Git service').version(VERSION);

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
  .command('demo')
  .description('start a demo cluster on this machine: redis-server, three stock Git backends and one githa')
  .option('--dir <dir>', 'keep the demo state in this directory between runs')
  .option('--json', 'print the facts as JSON')
  .action(async (opts: { dir?: string; json?: boolean }) => {
    await runDemo(opts);
  });

registerStatus(program);
registerRepo(program);
registerLog(program);
registerDataloss(program);
registerBackend(program);
registerConsole(program);
registerRecover(program);
registerThaw(program);
registerLock(program);
registerSync(program);
registerVerify(program);
registerInventory(program);
registerLifecycle(program);
// After registerBackend: it adds `backend drain|undrain`.
registerMove(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof GithaError) {
    process.stderr.write(`githa: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`githa: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
