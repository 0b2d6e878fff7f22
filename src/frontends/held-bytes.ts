/**
 * What githa itself holds in memory for its clients (docs/security.md "Memory
 * budgets"): a push's command list read before its pack, a held listing, a
 * held upload-pack body kept for replay, a held push report. One accountant
 * per process, shared by every front end; each request draws on it through a
 * RequestBudget released when the request ends.
 *
 * - Per request: the command list is refused (413, LimitExceededError) before
 *   it is held past memory.maxHeldBytesPerRequest; listings and replay bodies
 *   are held up to room() (past it they stream, unchecked / unreplayable, as
 *   over read.maxHeldListingBytes and read.maxReplayBodyBytes).
 * - Per process: new work is refused (503 + Retry-After, ServerBusyError) when
 *   the process holds memory.maxHeldBytes, or V8's heap is near its limit; a
 *   hold that would pass memory.maxHeldBytes is refused the same way.
 */
import { getHeapStatistics } from 'node:v8';
import { LimitExceededError, ServerBusyError } from '../errors.js';

/** New work is refused when V8's heap in use reaches this share of its limit (a last line behind the accounting). */
const HEAP_REFUSE_AT = 0.9;

export interface HeldBytesStats {
  held: number;
  /** The most held at once since the process started. */
  peak: number;
  limit: number;
  /** Refusals by budget: `request` (413), `process` (503: the held bytes), `heap` (503: V8's heap near its limit). */
  refused: { request: number; process: number; heap: number };
}

export interface HeapUse {
  used: number;
  limit: number;
}

function heapNow(): HeapUse {
  const h = getHeapStatistics();
  return { used: h.used_heap_size, limit: h.heap_size_limit };
}

export class HeldBytes {
  private held = 0;
  private peak = 0;
  private readonly refused = { request: 0, process: 0, heap: 0 };

  /**
   * @param limit bytes the whole process may hold for clients (memory.maxHeldBytes)
   * @param perRequest bytes one request may hold (memory.maxHeldBytesPerRequest)
   */
  constructor(
    readonly limit: number,
    readonly perRequest: number,
    private readonly heap: () => HeapUse = heapNow,
  ) {}

  /** memory.maxHeldBytes when unset: a quarter of V8's heap limit (node --max-old-space-size raises both). */
  static defaultLimit(): number {
    return Math.floor(getHeapStatistics().heap_size_limit / 4);
  }

  /** A new request's budget; refused (503) when the process already holds all it may, or the heap is near its limit. */
  open(): RequestBudget {
    if (this.held >= this.limit) {
      this.refused.process++;
      throw busy();
    }
    const heap = this.heap();
    if (heap.used >= heap.limit * HEAP_REFUSE_AT) {
      this.refused.heap++;
      throw new ServerBusyError('githa is short of memory; try again later');
    }
    return new RequestBudget(this);
  }

  stats(): HeldBytesStats {
    return { held: this.held, peak: this.peak, limit: this.limit, refused: { ...this.refused } };
  }

  /** @internal RequestBudget's accounting. */
  add(n: number, refuse: boolean): void {
    if (refuse && this.held + n > this.limit) {
      this.refused.process++;
      throw busy();
    }
    this.held += n;
    if (this.held > this.peak) this.peak = this.held;
  }

  /** @internal */
  sub(n: number): void {
    this.held = Math.max(0, this.held - n);
  }

  /** @internal */
  refuseRequest(what: string): LimitExceededError {
    this.refused.request++;
    return new LimitExceededError(`${what} is larger than githa holds for one request (${this.perRequest} bytes, memory.maxHeldBytesPerRequest)`);
  }
}

function busy(): ServerBusyError {
  return new ServerBusyError('githa holds as much for other requests as it may (memory.maxHeldBytes); try again later');
}

/** One request's share; release() when the request ends (idempotent). */
export class RequestBudget {
  private mine = 0;

  constructor(private readonly acct: HeldBytes) {}

  /** Bytes held by this request now. */
  get held(): number {
    return this.mine;
  }

  /** Bytes this request may still hold under its own budget. */
  room(): number {
    return Math.max(0, this.acct.perRequest - this.mine);
  }

  /** Holds `n` more bytes of `what`, or refuses before holding them: 413 past the request's budget, 503 past the process's. */
  take(n: number, what: string): void {
    if (this.mine + n > this.acct.perRequest) throw this.acct.refuseRequest(what);
    this.acct.add(n, true);
    this.mine += n;
  }

  /** Holds `n` more bytes whose size the caller caps by room(): refused (503) only past the process's budget. */
  hold(n: number): void {
    this.acct.add(n, true);
    this.mine += n;
  }

  /** Counts `n` held bytes that must not be refused (a push's report, after the push ran). */
  charge(n: number): void {
    this.acct.add(n, false);
    this.mine += n;
  }

  release(): void {
    this.acct.sub(this.mine);
    this.mine = 0;
  }
}
