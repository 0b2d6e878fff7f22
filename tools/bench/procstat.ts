/**
 * Process accounting from /proc (Linux, proc(5)), for githa's CPU seconds and
 * peak RSS and the backends' CPU seconds.
 *
 * Backend CPU: lighttpd runs `git http-backend` as a CGI, which runs
 * `git upload-pack`, which runs `git pack-objects`; sshd forks a process per
 * connection that runs upload-pack. Each of them waits for its children, so
 * when a request is over, all its CPU time is in the server's *cumulative
 * children* times (cutime + cstime, fields 16 and 17 of /proc/PID/stat). The
 * CPU a backend spent on a request is the change of utime + stime + cutime +
 * cstime of its listening process across the request, read once the server
 * has no child left (the children must have been reaped to be counted).
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux architecture Node supports (sysconf(_SC_CLK_TCK))

/** Fields of /proc/PID/stat after the parenthesised command name (which may hold spaces and parentheses). */
export function statFields(stat: string): string[] {
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error('malformed /proc/PID/stat');
  // After ") " come field 3 (state), 4 (ppid), …
  return stat.slice(close + 2).trim().split(/\s+/);
}

export interface CpuTimes {
  /** utime + stime of the process itself, seconds. */
  self: number;
  /** cutime + cstime: its reaped children, seconds. */
  children: number;
}

/** Parses /proc/PID/stat text into CPU seconds. */
export function parseCpu(stat: string): CpuTimes {
  const f = statFields(stat);
  // statFields()[0] is field 3, so field n is at index n - 3.
  const n = (field: number): number => Number(f[field - 3]);
  return { self: (n(14) + n(15)) / TICKS_PER_SECOND, children: (n(16) + n(17)) / TICKS_PER_SECOND };
}

export function cpuTimes(pid: number): CpuTimes {
  return parseCpu(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** Own + reaped children's CPU seconds. */
export function totalCpu(pid: number): number {
  const t = cpuTimes(pid);
  return t.self + t.children;
}

/** A field of /proc/PID/status in kB ("VmHWM:   123456 kB"), as bytes; NaN when absent. */
export function parseStatusKb(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Peak resident set size (VmHWM) in bytes. */
export function peakRss(pid: number): number {
  return parseStatusKb(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmHWM');
}

/** Resets VmHWM to the current RSS (writing 5 to clear_refs, Linux ≥ 4.0), so a later peak belongs to what ran since. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Pids of every process whose command line contains `needle` (e.g. a dev backend's lighttpd.conf path). */
export function findPids(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(needle)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Direct children of a process (every thread's /proc/PID/task/TID/children). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // gone, or no children file (kernel without CONFIG_PROC_CHILDREN)
  }
  return out;
}

/** Every living descendant of a process. */
export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of childrenOf(queue.shift()!)) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/**
 * CPU seconds of a server's whole process tree: each living process's own
 * time plus its reaped children's. No time is counted twice (a process's
 * cutime holds only children that no longer exist), and a long-lived
 * per-connection process (sshd serving githa's pooled connection) counts the
 * upload-packs it has reaped.
 */
export function treeCpu(root: number): number {
  let sum = 0;
  for (const p of [root, ...descendantsOf(root)]) {
    try {
      sum += totalCpu(p);
    } catch {
      // exited between the listing and the read: its time is in its parent's once reaped
    }
  }
  return sum;
}

/**
 * Total CPU seconds of several server trees, read once each has no more
 * descendants than `baseline[i]` (bounded wait): the request's processes must
 * have exited and been reaped for their time to be counted.
 */
export async function settledCpu(roots: readonly number[], baseline: readonly number[], maxWaitMs = 3_000): Promise<number> {
  const until = performance.now() + maxWaitMs;
  while (roots.some((p, i) => descendantsOf(p).length > (baseline[i] ?? 0)) && performance.now() < until) await sleep(10);
  return roots.reduce((sum, p) => sum + treeCpu(p), 0);
}
