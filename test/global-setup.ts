import { execFileSync } from 'node:child_process';

/**
 * Integration tests run githa as a real process (node dist/cli/main.js), and
 * the chaos harness runs its own entry scripts (dist-tools/, from tools/), so
 * both must match the sources: build them once before any test file runs.
 */
export default function setup(): void {
  // Several vitest runs side by side (one engineer each) must not rebuild dist/
  // under each other's running githa processes: the one who built may skip it.
  if (process.env.GITHA_TEST_SKIP_BUILD === '1') return;
  for (const project of ['tsconfig.build.json', 'tsconfig.tools.json']) {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', project], { stdio: 'inherit' });
  }
}
