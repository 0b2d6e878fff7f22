import { Writable } from 'node:stream';
import { printable } from './output.js';

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const COLOURS: Record<string, string> = { trace: '90', debug: '90', info: '32', warn: '33', error: '31', fatal: '35' };
/** Fields every line carries that say nothing to a person at a terminal. */
const DROPPED = new Set(['time', 'level', 'msg', 'pid', 'hostname', 'svc']);

/**
 * One pino JSON line as `HH:MM:SS level msg key=value…` (local time). A line
 * that is not JSON is returned as it is.
 */
export function formatLogLine(line: string, colour = false): string {
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return line;
    entry = parsed as Record<string, unknown>;
  } catch {
    return line;
  }
  const t = new Date(typeof entry.time === 'number' ? entry.time : Date.now());
  const hhmmss = [t.getHours(), t.getMinutes(), t.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const level = LEVELS[Number(entry.level)] ?? String(entry.level ?? '');
  const shown = colour ? `\x1b[${COLOURS[level] ?? '0'}m${level.padEnd(5)}\x1b[0m` : level.padEnd(5);
  const pairs = Object.entries(entry)
    .filter(([k]) => !DROPPED.has(k))
    .map(([k, v]) => printable(`${k}=${value(v)}`));
  // Messages and values can carry a backend's words: no control character of theirs reaches the terminal.
  return [hhmmss, shown, printable(String(entry.msg ?? '')), ...pairs].join(' ');
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

/**
 * A stream for createLogger that writes each JSON line to `out` formatted for
 * people. On a terminal each line first clears the current one, so a log line
 * never lands in the middle of a progress bar (src/cli/output.ts redraws it).
 */
export function prettyLogStream(out: NodeJS.WritableStream & { isTTY?: boolean }): Writable {
  let pending = '';
  const colour = out.isTTY === true && !process.env.NO_COLOR;
  return new Writable({
    write(chunk: Buffer | string, _enc, done) {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      const clear = out.isTTY === true ? '\r\x1b[K' : '';
      const text = lines.filter((l) => l.length > 0).map((l) => `${clear}${formatLogLine(l, colour)}\n`).join('');
      if (text) out.write(text);
      done();
    },
    final(done) {
      if (pending) out.write(`${formatLogLine(pending, colour)}\n`);
      done();
    },
  });
}
