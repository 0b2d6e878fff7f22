import { execFileSync } from 'node:child_process';

/**
 * Integration tests run githa as a real process (node dist/cli/main.js), so
 * dist/ must match src/: build it once before any test file runs.
 */
export default function setup(): void {
  // Several vitest runs side by side (one engineer each) must not rebuild dist/
  // under each other's running githa processes: the one who built may skip it.
  if (process.env.GITHA_TEST_SKIP_BUILD === '1') return;
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
