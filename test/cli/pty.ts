/**
 * Runs the operator CLI in a real pseudo-terminal (node-pty), as an operator
 * at a terminal would: wait for a prompt, type an answer, read the exit
 * status. Every process started here is killed when the test finishes.
 */
import { resolve } from 'node:path';
import pty from 'node-pty';
import { onTestFinished } from 'vitest';
import { StopWaiting, waitFor } from '../support/wait.js';

const MAIN = resolve(import.meta.dirname, '../../dist/cli/main.js');

/** The terminal's output without colour and cursor sequences, with \n line ends. */
export function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r\n/g, '\n').replace(/\r/g, '\n');
}

export interface PtyRun {
  /** Everything printed so far (stdout and stderr share the terminal), plain. */
  output(): string;
  /** Waits until the output (after `from` characters) matches; fails after `timeoutMs` with what was printed. */
  waitFor(pattern: RegExp | string, timeoutMs?: number, from?: number): Promise<void>;
  /** Types on the terminal. */
  write(text: string): void;
  /** Resolves with the exit status; fails after `timeoutMs`. */
  exit(timeoutMs?: number): Promise<number>;
}

/** `githa <args…> --config <configPath>` on a pseudo-terminal. */
export function githaPty(configPath: string, args: string[]): PtyRun {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'GITHA_REDIS_URL') env[k] = v;
  env.GITHA_CONFIG = '';
  const p = pty.spawn(process.execPath, [MAIN, ...args, '--config', configPath], { name: 'xterm', cols: 200, rows: 50, cwd: process.cwd(), env });
  let out = '';
  let code: number | undefined;
  const exited = new Promise<number>((res) =>
    p.onExit((e) => {
      code = e.exitCode;
      res(e.exitCode);
    }),
  );
  p.onData((d) => {
    out += d;
  });
  onTestFinished(() => {
    if (code === undefined) p.kill('SIGKILL');
  });
  return {
    output: () => plain(out),
    async waitFor(pattern, timeoutMs = 20_000, from = 0) {
      const matches = (): boolean => {
        const text = plain(out).slice(from);
        return typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text);
      };
      await waitFor(
        String(pattern),
        () => {
          if (matches()) return true;
          if (code !== undefined) throw new StopWaiting(`githa ${args.join(' ')} exited (${code}) before printing ${String(pattern)}:\n${plain(out)}`);
          return false;
        },
        timeoutMs,
        { intervalMs: 25, detail: () => `printed:\n${plain(out)}` },
      );
    },
    write(text) {
      p.write(text);
    },
    async exit(timeoutMs = 30_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`githa ${args.join(' ')} did not exit within ${timeoutMs} ms; printed:\n${plain(out)}`)), timeoutMs);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
