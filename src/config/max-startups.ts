/** `ssh.maxStartups` (docs/config.md), parsed for the SSH front end's limits (src/frontends/ssh/limits.ts). */
/** sshd's `MaxStartups start:rate:full` (sshd_config(5)). */
export interface StartupLimit {
  /** Unauthenticated connections at which random early drop begins. */
  start: number;
  /** Percentage of new connections dropped at `start`, rising linearly to 100 at `full`. */
  rate: number;
  /** Unauthenticated connections at which every new one is dropped. */
  full: number;
}

/** `ssh.maxStartups`: a number N (start = full = N, as sshd) or "start:rate:full"; undefined when malformed. */
export function parseMaxStartups(value: number | string): StartupLimit | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? { start: value, rate: 100, full: value } : undefined;
  const m = /^(\d{1,6}):(\d{1,3}):(\d{1,6})$/.exec(value);
  if (!m) return undefined;
  const [start, rate, full] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (start < 1 || rate > 100 || full < start) return undefined;
  return { start, rate, full };
}
