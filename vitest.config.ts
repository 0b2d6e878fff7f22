import { defineConfig } from 'vitest/config';

// Integration tests start real servers (redis-server, lighttpd, sshd, git daemon)
// and run githa as a real process; test/global-setup.ts builds dist/ and dist-tools/ first.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // One file at a time: each starts real servers, and parallel files on 2 cores make
    // timing (lock leases, Redis command timeouts) flaky. The whole suite takes minutes.
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
  },
});
