/**
 * What this githa knows of its backends' health: one small state machine per
 * backend, fed by the health checker's probes and by requests (docs/architecture.md
 * "Health"; docs/config.md `health.*`).
 *
 * - Probes: `failuresToDown` consecutive failed probes mark a backend down; a
 *   down backend needs `successesToUp` consecutive good probes to be up again.
 *   One odd probe never flips a backend.
 * - Requests: a refused connection (`markDown`, see saysBackendDown) marks it
 *   down at once, since a client is waiting; such a mark lapses after `downForMs` unless a probe
 *   confirms it (then the probes decide), so a githa without a running
 *   checker behaves as before: a refused backend is tried last for a while.
 *   A served request (`markUp`) is evidence the backend is up: it lifts a
 *   request-time mark at once and counts as a good probe otherwise.
 * - Down is a routing preference, not a verdict: routing still tries a down
 *   leader last (src/cluster/routing.ts).
 *
 * The state is this process's only; src/cluster/health-checker.ts shares it
 * in Redis. Pure: no I/O, clocks injectable for tests.
 */

/** Connection errors that say no server listens at the address, or none can be reached: down, never busy. */
const NOTHING_LISTENS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND']);

/**
 * Whether a request's failure to reach a backend marks it down at once
 * (`markDown`): only when the connection was refused or had no route. A
 * connection that timed out, was reset, or closed before a byte is also what
 * a busy server does (git daemon past `--max-connections` kills a child or
 * drops the connection and stops accepting for a second, so its listen queue
 * fills; sshd past MaxStartups drops connections): the request tries the
 * next copy, and the probes, which need `failuresToDown` failures in a row,
 * decide the backend's health. One busy moment is not a verdict shared in
 * Redis for every githa (docs/architecture.md "Health").
 */
export function saysBackendDown(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && NOTHING_LISTENS.has(code)) return true;
  }
  return false;
}

export interface HealthOptions {
  /** How long a request-time down mark lasts without a probe confirming it. */
  downForMs: number;
  /** Consecutive failed probes before an up backend is marked down. */
  failuresToDown: number;
  /** Consecutive good probes before a down backend is marked up. */
  successesToUp: number;
  /** Monotonic milliseconds (default performance.now) for the request-time expiry. */
  now?: () => number;
  /** Wall-clock milliseconds (default Date.now) for `since` in snapshots. */
  wallClock?: () => number;
}

export interface BackendHealthView {
  id: string;
  up: boolean;
  /** Epoch ms of the last transition (or of the start, for a backend that never changed). */
  since: number;
  /** Why it is down (the last failure), when it is. */
  detail?: string;
}

export type HealthListener = (id: string, up: boolean) => void;

interface BackendState {
  up: boolean;
  since: number;
  detail: string | undefined;
  failures: number;
  successes: number;
  /** Monotonic time a request-time down mark lapses; undefined once probes (or a seed) hold the verdict. */
  lapsesAt: number | undefined;
}

export class Health {
  private readonly states = new Map<string, BackendState>();
  private readonly listeners = new Set<HealthListener>();
  private readonly opts: Required<Pick<HealthOptions, 'downForMs' | 'failuresToDown' | 'successesToUp'>>;
  private readonly now: () => number;
  private readonly wallClock: () => number;
  private readonly started: number;

  constructor(options: HealthOptions) {
    this.opts = {
      downForMs: options.downForMs,
      failuresToDown: Math.max(1, options.failuresToDown),
      successesToUp: Math.max(1, options.successesToUp),
    };
    this.now = options.now ?? (() => performance.now());
    this.wallClock = options.wallClock ?? Date.now;
    this.started = this.wallClock();
  }

  /** A request could not connect to the backend: down at once, for downForMs unless a probe confirms it. */
  markDown(id: string, detail = 'a request could not connect'): void {
    const s = this.state(id);
    s.successes = 0;
    if (s.up) {
      this.transition(id, s, false, detail);
      s.lapsesAt = this.now() + this.opts.downForMs;
    } else if (s.lapsesAt !== undefined) {
      s.lapsesAt = this.now() + this.opts.downForMs;
    }
  }

  /** A request was served by the backend: evidence that it is up. */
  markUp(id: string): void {
    const s = this.states.get(id);
    if (!s) return; // never seen down: nothing to record (the hot path of every read)
    s.failures = 0;
    if (s.up) return;
    if (this.lapse(id, s)) return;
    if (s.lapsesAt !== undefined) {
      this.transition(id, s, true);
      return;
    }
    s.successes++;
    if (s.successes >= this.opts.successesToUp) this.transition(id, s, true);
  }

  /** One probe's outcome (src/cluster/health-checker.ts). */
  probeResult(id: string, ok: boolean, detail?: string): void {
    const s = this.state(id);
    this.lapse(id, s);
    if (ok) {
      s.failures = 0;
      if (s.up) return;
      s.successes++;
      if (s.successes >= this.opts.successesToUp) this.transition(id, s, true);
      return;
    }
    s.successes = 0;
    s.failures++;
    if (!s.up) {
      // A probe confirms the request-time mark: from now on the probes decide.
      s.lapsesAt = undefined;
      if (detail !== undefined) s.detail = detail;
      return;
    }
    if (s.failures >= this.opts.failuresToDown) this.transition(id, s, false, detail);
  }

  /**
   * Adopts a verdict another githa shared (at the checker's start): a backend
   * seen down elsewhere starts down here and needs successesToUp good probes.
   */
  seed(id: string, up: boolean, detail?: string): void {
    const s = this.state(id);
    if (s.up === up) return;
    s.failures = 0;
    s.successes = 0;
    this.transition(id, s, up, detail);
  }

  isHealthy(id: string): boolean {
    const s = this.states.get(id);
    if (!s) return true;
    this.lapse(id, s);
    return s.up;
  }

  /** Calls `fn` on every transition (up → down, down → up); returns the unsubscribe function. */
  onChange(fn: HealthListener): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /** The view of every backend with a state, plus `ids` (never seen: up since the start). */
  snapshot(ids: readonly string[] = []): BackendHealthView[] {
    const all = new Set([...ids, ...this.states.keys()]);
    return [...all].map((id) => {
      const s = this.states.get(id);
      if (!s) return { id, up: true, since: this.started };
      this.lapse(id, s);
      return { id, up: s.up, since: s.since, ...(s.detail !== undefined && !s.up ? { detail: s.detail } : {}) };
    });
  }

  private state(id: string): BackendState {
    let s = this.states.get(id);
    if (!s) {
      s = { up: true, since: this.started, detail: undefined, failures: 0, successes: 0, lapsesAt: undefined };
      this.states.set(id, s);
    }
    return s;
  }

  /** Lifts a request-time down mark whose time is up; true when it did. */
  private lapse(id: string, s: BackendState): boolean {
    if (s.up || s.lapsesAt === undefined || this.now() < s.lapsesAt) return false;
    this.transition(id, s, true);
    return true;
  }

  private transition(id: string, s: BackendState, up: boolean, detail?: string): void {
    s.up = up;
    s.since = this.wallClock();
    s.detail = up ? undefined : detail;
    s.lapsesAt = undefined;
    s.failures = 0;
    s.successes = 0;
    for (const fn of [...this.listeners]) {
      try {
        fn(id, up);
      } catch {
        // A listener's failure must not break routing, which calls in here.
      }
    }
  }
}
