/**
 * The health checker: every githa probes every enabled backend every
 * `health.intervalMs`, feeds the results to its Health (routing reads that),
 * and shares its verdicts in Redis (docs/architecture.md "Health"; docs/config.md
 * `health.*`, docs/redis.md `githa:backend:<id>`).
 *
 * - A backend is probed on every endpoint githa has a client for (HTTP, SSH,
 *   git://), all at once, each bounded by `health.timeoutMs`. It is healthy
 *   when all of them answer: routing uses one health per backend whatever the
 *   transport, so a dead SSH server must not hide behind a live web server.
 * - Rounds never overlap: the next starts `intervalMs` after the previous
 *   one started, or at once when a round took longer.
 * - Shared results: written on every transition (also request-time ones)
 *   and otherwise refreshed every ttlMs/3, so a live checker's result never
 *   expires. At start, fresh shared results seed the local view: a backend
 *   another githa sees down starts down here.
 * - Timers are unref'd; stop() aborts the probes in flight and waits for
 *   them and for pending writes, so nothing runs once it has resolved.
 */
import type { BackendClient } from '../backends/types.js';
import type { Logger } from '../log.js';
import type { BackendHealthStore } from '../state/backend-health.js';
import type { Health } from './health.js';

export interface HealthCheckerOptions {
  health: Health;
  /** Every configured backend; disabled ones are not probed. */
  backends: ReadonlyArray<{ readonly id: string; readonly enabled: boolean }>;
  /** githa's clients of the backends, by transport: each map is backend id → client. */
  clients: ReadonlyArray<ReadonlyMap<string, BackendClient>>;
  shared: BackendHealthStore;
  intervalMs: number;
  timeoutMs: number;
  ttlMs: number;
  log: Logger;
  /** Monotonic milliseconds (default performance.now). */
  now?: () => number;
}

export class HealthChecker {
  private readonly endpoints: ReadonlyMap<string, readonly BackendClient[]>;
  private readonly now: () => number;
  private readonly lastShared = new Map<string, number>();
  private readonly writes = new Set<Promise<unknown>>();
  private stopping = new AbortController();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private seeding: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly opts: HealthCheckerOptions) {
    this.now = opts.now ?? (() => performance.now());
    const endpoints = new Map<string, BackendClient[]>();
    for (const b of opts.backends) {
      if (!b.enabled) continue;
      const clients = new Set(opts.clients.map((m) => m.get(b.id)).filter((c): c is BackendClient => c !== undefined));
      if (clients.size > 0) endpoints.set(b.id, [...clients]);
    }
    this.endpoints = endpoints;
  }

  /** Seeds the local view from fresh shared results, then probes at once and every intervalMs. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.stopping = new AbortController();
    this.seeding = this.seed();
    await this.seeding;
    if (!this.running) return; // stopped while seeding
    this.unsubscribe = this.opts.health.onChange((id, up) => this.changed(id, up));
    this.schedule(0);
  }

  /** Stops probing; resolves once no probe, timer or Redis write of the checker is left. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.stopping.abort();
    await this.seeding;
    await this.round;
    await Promise.all([...this.writes]);
  }

  private async seed(): Promise<void> {
    // Bounded: with Redis down githa starts anyway (and fails closed per request).
    const shared = await this.opts.shared.readFresh([...this.endpoints.keys()], this.opts.timeoutMs);
    for (const result of shared.values()) {
      if (result.up) continue; // up is what Health assumes anyway
      const detail = `down as seen by ${result.by}${result.detail ? `: ${result.detail}` : ''}`;
      this.opts.health.seed(result.id, false, detail);
      this.opts.log.warn({ backend: result.id, by: result.by, detail: result.detail }, 'backend starts down: another githa sees it down');
    }
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const started = this.now();
      this.round = this.probeAll().finally(() => {
        this.round = undefined;
        if (this.running) this.schedule(Math.max(0, this.opts.intervalMs - (this.now() - started)));
      });
    }, delayMs);
    this.timer.unref();
  }

  private async probeAll(): Promise<void> {
    await Promise.all([...this.endpoints].map(([id, clients]) => this.probeBackend(id, clients)));
  }

  private async probeBackend(id: string, clients: readonly BackendClient[]): Promise<void> {
    // The probe's own signal: aborted by its time limit or by stop(). (Listeners
    // are removed afterwards, so the long-lived stop signal collects none.)
    const probe = new AbortController();
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const onTimeout = (): void => probe.abort(timeout.reason);
    const onStop = (): void => probe.abort(this.stopping.signal.reason);
    timeout.addEventListener('abort', onTimeout, { once: true });
    this.stopping.signal.addEventListener('abort', onStop, { once: true });
    let results: PromiseSettledResult<void>[];
    try {
      results = await Promise.allSettled(clients.map((c) => c.probe(probe.signal)));
    } finally {
      timeout.removeEventListener('abort', onTimeout);
      this.stopping.signal.removeEventListener('abort', onStop);
    }
    // A probe cut short by stop() says nothing about the backend.
    if (!this.running) return;
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => errorMessage(r.reason));
    const detail = failures.length > 0 ? failures.join('; ') : undefined;
    if (detail !== undefined) this.opts.log.debug({ backend: id, detail }, 'backend probe failed');
    this.opts.health.probeResult(id, failures.length === 0, detail);
    const last = this.lastShared.get(id);
    if (last === undefined || this.now() - last >= this.opts.ttlMs / 3) {
      const view = this.view(id);
      this.share(id, view.up, view.detail);
    }
  }

  /** A transition of the local view (probe-driven or request-time): logged and shared at once. */
  private changed(id: string, up: boolean): void {
    const { detail } = this.view(id);
    const log = this.opts.log.child({ backend: id });
    if (up) log.info('backend up');
    else log.warn({ detail }, 'backend down');
    this.share(id, up, detail);
  }

  private view(id: string): { up: boolean; detail?: string | undefined } {
    const v = this.opts.health.snapshot([id]).find((s) => s.id === id);
    return { up: v?.up ?? true, detail: v?.detail };
  }

  private share(id: string, up: boolean, detail: string | undefined): void {
    this.lastShared.set(id, this.now());
    const write = this.opts.shared.write(id, up, detail).finally(() => this.writes.delete(write));
    this.writes.add(write);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
