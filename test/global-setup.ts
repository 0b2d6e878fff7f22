import { execFileSync } from 'node:child_process';

/**
 * Integration tests run githa as a real process (node dist/cli/main.js), so
 * dist/ must match src/: build it once before any test file runs.
 */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
