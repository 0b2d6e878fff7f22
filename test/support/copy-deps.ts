import type { Logger } from 'pino';
import type { CopyDeps } from '../../src/cluster/catch-up.js';
import { NO_OBSERVER } from '../../src/cluster/observer.js';
import { NO_REPAIRS } from '../../src/cluster/read-check.js';
import type { RedisClient } from '../../src/state/redis.js';
import { openState, type StateParts } from '../../src/state/state.js';

/** The state parts a test drives copies with, on prefix githa: (as the harness's githa uses). */
export function testState(redis: RedisClient, prefix = 'githa:'): StateParts {
  return openState(redis, { prefix, logMax: 1000, locks: { leaseMs: 15_000, waitMs: 5_000 } });
}

/** What catchUp() needs, from a test's state parts. */
export function copyDeps(state: StateParts, log: Logger): CopyDeps {
  return { pairs: state.pairs, repos: state.repos, log, observer: NO_OBSERVER, repairs: NO_REPAIRS };
}
