import { defineConfig } from 'vitest/config';

/**
 * Two projects; `vitest run` runs both (unit first), `npm run test:unit` only
 * the first.
 *
 * - unit: pure code, and code driven in-process (loopback sockets of its own,
 *   local git or ssh-keygen processes); no Redis, no stock Git servers, no
 *   githa process. Files run in parallel.
 * - integration: anything that starts real servers (redis-server, lighttpd,
 *   sshd, git daemon through test/support/cluster.ts) or runs githa as a
 *   process (dist/ and dist-tools/, built first by test/global-setup.ts). One file at a time:
 *   parallel files on 2 cores make timing (lock leases, Redis command
 *   timeouts) flaky. This project takes minutes.
 */
const INTEGRATION = [
  'test/integration/**/*.test.ts',
  'test/cli/**/*.test.ts',
  'test/deploy/**/*.test.ts',
  'test/admin/metrics.test.ts',
  'test/admin/status-page.test.ts',
  'test/admin/status-paging.test.ts',
  'test/chaos/chaos.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: INTEGRATION,
          pool: 'threads',
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: INTEGRATION,
          globalSetup: ['test/global-setup.ts'],
          pool: 'forks',
          maxWorkers: 1,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
