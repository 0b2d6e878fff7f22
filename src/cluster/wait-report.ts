/**
 * What githa tells the Git user while it makes a request wait
 * (docs/architecture.md "What the Git user sees while githa waits"). The
 * cluster knows no transport: it reports a wait to a `WaitReporter` the front
 * end passes in; the front end decides whether and where the client can be
 * shown it (side-band 2, SSH stderr, nowhere).
 */

/**
 * lock: a push waits for the repository's write lock (another push holds it);
 * catch-up: a request waits for a copy to be caught up before it can be served or written;
 * copies: a push waits for its write-quorum copies;
 * push: a read waits for a push on every leader that could serve it to be recorded.
 */
export type WaitKind = 'lock' | 'catch-up' | 'copies' | 'push';

export interface Wait {
  kind: WaitKind;
  repo: string;
  /** copies: how many backends the push is copied to. */
  backends?: number;
}

export interface WaitReport extends Wait {
  elapsedMs: number;
  /** The wait is over: the last report of this wait (only when an earlier one was made). */
  done: boolean;
}

/** A front end's ear for waits; it must not throw (a throw is caught and ignored). */
export interface WaitReporter {
  onWait(report: WaitReport): void;
}

/** The first report comes this long into a wait: a fast request shows nothing. */
export const WAIT_FIRST_REPORT_MS = 1_000;
/** Then one report at most this often. */
export const WAIT_REPORT_EVERY_MS = 1_000;

export interface WaitWatch {
  /** Ends the wait (idempotent): a "done" report follows when any report was made. */
  stop(): void;
}

const NO_WATCH: WaitWatch = { stop: () => {} };

/**
 * Reports `wait` to `reporter` WAIT_FIRST_REPORT_MS after now, then every
 * WAIT_REPORT_EVERY_MS, until stopped. Timers are unref'd: a wait never keeps
 * the process alive.
 */
export function watchWait(reporter: WaitReporter | undefined, wait: Wait, now: () => number = () => performance.now()): WaitWatch {
  if (!reporter) return NO_WATCH;
  const started = now();
  let reported = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const report = (done: boolean): void => {
    try {
      reporter.onWait({ ...wait, elapsedMs: Math.max(0, now() - started), done });
    } catch {
      // A reporter's failure (a client gone) must not change the request's course.
    }
  };
  const tick = (): void => {
    if (stopped) return;
    reported = true;
    report(false);
    timer = setTimeout(tick, WAIT_REPORT_EVERY_MS);
    timer.unref();
  };
  timer = setTimeout(tick, WAIT_FIRST_REPORT_MS);
  timer.unref();
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      if (reported) report(true);
    },
  };
}

/** Runs `work` while `wait` is reported; the watch ends with it, however it ends. */
export async function whileWaiting<T>(reporter: WaitReporter | undefined, wait: Wait, work: () => Promise<T>): Promise<T> {
  const watch = watchWait(reporter, wait);
  try {
    return await work();
  } finally {
    watch.stop();
  }
}

/**
 * The line the user sees (git prefixes "remote: " on side-band 2). Updates end
 * in "\r" so the next one overwrites them; the last says ", done." and ends
 * the line, as git's own progress lines do (progress.c).
 */
export function waitMessage(r: WaitReport): string {
  const s = Math.floor(r.elapsedMs / 1000);
  const n = r.backends ?? 1;
  const text =
    r.kind === 'lock'
      ? `waiting for another push to ${r.repo}`
      : r.kind === 'catch-up'
        ? `waiting for a copy of ${r.repo} to catch up`
        : r.kind === 'copies'
          ? `copying ${r.repo} to ${n} ${n === 1 ? 'backend' : 'backends'}`
          : `waiting for a push to ${r.repo} to be recorded`;
  return `githa: ${text} (${s} s)${r.done ? ', done.\n' : '\r'}`;
}
