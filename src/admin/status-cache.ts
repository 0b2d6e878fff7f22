import type { ClusterStatus } from '../cluster/cluster-status.js';

/**
 * One cached `collectStatus` snapshot, shared by /metrics and /status: a
 * scrape or a page view never scans githa:repos itself. A snapshot older than
 * `refreshMs` is still served while a new one is collected in the background
 * (one at a time); only the very first caller waits for a collection. Nothing
 * is collected while nobody asks.
 */
export class StatusCache {
  private current: ClusterStatus | undefined;
  private loading: Promise<ClusterStatus> | undefined;
  /** performance.now() after which the snapshot is refreshed. */
  private due = -Infinity;
  private lastError: unknown;

  constructor(
    private readonly load: () => Promise<ClusterStatus>,
    private readonly refreshMs: number,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** The snapshot (waiting only when there is none yet); starts a background refresh when it is due. */
  async get(): Promise<ClusterStatus> {
    const loading = this.refreshIfDue();
    if (this.current) return this.current;
    if (loading) return loading;
    throw this.lastError ?? new Error('cluster status unavailable');
  }

  /** The snapshot if there is one, without waiting. */
  peek(): ClusterStatus | undefined {
    void this.refreshIfDue();
    return this.current;
  }

  private refreshIfDue(): Promise<ClusterStatus> | undefined {
    if (this.loading || performance.now() < this.due) return this.loading;
    const loading = this.load().then(
      (status) => {
        this.current = status;
        this.due = performance.now() + this.refreshMs;
        return status;
      },
      (err: unknown) => {
        // Redis unreachable: keep serving the last snapshot, try again in a second.
        this.due = performance.now() + Math.min(1_000, this.refreshMs);
        this.lastError = err;
        this.onError(err);
        throw err;
      },
    );
    this.loading = loading.finally(() => {
      this.loading = undefined;
    });
    // A failed background refresh is reported through onError; callers that wait see the rejection.
    this.loading.catch(() => {});
    return this.loading;
  }
}
