/**
 * The one polling helper of the tests: wait for something observable (a
 * Redis key, a log line, a process's output) instead of sleeping.
 */

/** Thrown by a probe to stop waiting at once (e.g. the process being watched exited): rethrown as is. */
export class StopWaiting extends Error {}

export interface WaitOptions {
  /** Time between probes (default 50 ms). */
  intervalMs?: number;
  /** More to say on a timeout (e.g. what a terminal shows). */
  detail?: () => string;
}

/**
 * Polls `probe` until it returns something other than undefined or false
 * (errors count as "not yet", except StopWaiting), or fails after
 * `timeoutMs` naming `what` and the last error.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  options: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = options.detail ? `\n${options.detail()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}${detail}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}
