#!/usr/bin/env node
/**
 * A deliberately broken githa for the chaos self-test (docs/chaos.md, "The
 * broken githa"): `githa serve` with the hook that releases a push's report
 * before its version is committed. Only the harness runs this file
 * (`node dist-tools/tools/chaos/githa-ack-before-commit.js --config FILE`);
 * the product has no switch for it.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config/load.js';
import { startGitha } from '../../src/githa.js';
import { createLogger } from '../../src/log.js';

const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } } });
const config = loadConfig(values.config);
const log = createLogger(config.log.level);
const githa = await startGitha(config, log, { ackBeforeCommit: true });
const stop = (): void => {
  githa.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
