/**
 * What the operator CLI prints: aligned tables for people, one JSON document
 * for scripts, a progress bar on a terminal (plain lines otherwise), and
 * yes/no prompts. Only src/cli/ prints; everything here writes to the
 * streams it is given, so commands can be tested with any stream.
 */
import { createInterface } from 'node:readline/promises';

export interface Streams {
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  err: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  in: NodeJS.ReadableStream & { isTTY?: boolean };
}

export const stdio: Streams = { out: process.stdout, err: process.stderr, in: process.stdin };

/**
 * A reader that stops early (`githa log R | head`) closes the pipe; the next
 * write fails with EPIPE, emitted as an 'error' event that would end the
 * process with a stack trace. githa then drops the rest of that stream's
 * output quietly and the command runs to its end, with its own exit status:
 * a mutating command (`githa recover | head`) must not stop between two
 * repositories and report success for work it never did. (A destroyed
 * stream emits no further errors; later writes are dropped.) Installed once,
 * by src/cli/main.ts.
 */
export function quietOnClosedPipe(out: NodeJS.EventEmitter = process.stdout, err: NodeJS.EventEmitter = process.stderr): void {
  const closed = (e: NodeJS.ErrnoException): boolean => e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED';
  for (const stream of [out, err]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (!closed(e)) throw e;
    });
  }
}

/**
 * Text others chose (a commit subject any pusher wrote, a backend's error)
 * as the operator's terminal may show it: control characters (C0, DEL, C1)
 * spelled out as \u001b etc., so no escape sequence in it can erase or move
 * over what githa printed, or set the clipboard (OSC 52).
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is spelled out
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Exit statuses of every operator command: 0 all well; 1 the command worked
 * and found (or left) something that needs attention (data at risk, a
 * refusal, "no" at a prompt); 2 the command could not run (bad arguments,
 * Redis unreachable, invalid config).
 */
export const EXIT = { OK: 0, ATTENTION: 1, FAILED: 2 } as const;

/** Columns padded to the widest cell; the header is upper-cased. */
export function table(rows: ReadonlyArray<Record<string, string | number | boolean | undefined>>, columns: readonly string[]): string {
  const cell = (v: unknown): string => (v === undefined || v === '' ? '-' : typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v));
  const header = columns.map((c) => c.toUpperCase());
  const body = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((_, i) => Math.max(header[i]!.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...body.map(line)].join('\n') + '\n';
}

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export interface Progress {
  tick(label?: string): void;
  done(): void;
}

/**
 * A progress bar on a terminal (redrawn in place on stderr); elsewhere one
 * plain line per step, so logs and pipes stay readable.
 */
export function progress(streams: Streams, total: number, what: string): Progress {
  let n = 0;
  const tty = streams.err.isTTY === true;
  const draw = (label: string): void => {
    if (tty) {
      const width = Math.max(10, Math.min(40, (streams.err.columns ?? 80) - 40));
      const filled = total > 0 ? Math.round((n / total) * width) : width;
      streams.err.write(`\r${what} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${n}/${total} ${label}`.slice(0, (streams.err.columns ?? 120) - 1) + '\x1b[K');
    } else {
      streams.err.write(`${what}: ${n}/${total}${label ? ` ${label}` : ''}\n`);
    }
  };
  return {
    tick(label = '') {
      n++;
      draw(label);
    },
    done() {
      if (tty) streams.err.write('\n');
    },
  };
}

/** Asks a yes/no question; anything but y/yes is no. Without a terminal on stdin, the answer is no (use --force). */
export async function confirm(streams: Streams, question: string): Promise<boolean> {
  const rl = createInterface({ input: streams.in, output: streams.err, terminal: streams.in.isTTY === true });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } catch {
    return false;
  } finally {
    rl.close();
  }
}
