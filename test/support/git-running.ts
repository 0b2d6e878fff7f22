import { spawn } from 'node:child_process';
import type { GitClient } from './git.js';
import { StopWaiting } from './wait.js';

/** A git command started in the background: its stderr so far, and its exit code once it ends. */
export interface RunningGit {
  /** stderr so far, for a waitFor: stops the wait (StopWaiting) when git ended before the awaited text came. */
  stderr(): string;
  /** stderr so far, whether or not git has ended. */
  text(): string;
  exit: Promise<number | null>;
}

/**
 * A git command whose stderr can be watched while it runs. Pushes that should
 * show githa's waits pass --progress: without a terminal git sends `quiet`,
 * and githa then shows no progress on side-band 2, as receive-pack shows none
 * of its own.
 */
export function gitRunning(git: GitClient, args: string[], cwd: string, env: Record<string, string> = {}): RunningGit {
  const child = spawn('git', args, { cwd, env: git.environment(env), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let exited = false;
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  void exit.then(() => (exited = true));
  return {
    stderr: () => {
      if (exited) throw new StopWaiting(`git ${args.join(' ')} ended early:\n${stderr}`);
      return stderr;
    },
    text: () => stderr,
    exit,
  };
}
