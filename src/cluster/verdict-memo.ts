/**
 * Memoized listing verdicts (docs/performance.md "F2: memoized verdicts"):
 * every read holds its backend's ref listing and checksums it before the
 * client gets a byte (docs/architecture.md "Verified copies"). Decoding,
 * parsing and checksumming a 5,000-ref listing costs tens of milliseconds;
 * an unchanged repository sends the same bytes on every read. This cache
 * keeps what was computed from a listing under a SHA-256 of its exact bytes
 * and of how they were read, so identical bytes are parsed once per change.
 *
 * It is a pure cache: the value stored is what the computation returned for
 * those bytes under that interpretation, and a hit returns it unchanged. It
 * never holds a verdict against the record (whether the copy agrees with the
 * route is judged on every read, after the lookup): only what the bytes say.
 * A computation that throws stores nothing.
 */
import { createHash } from 'node:crypto';

/**
 * One way of reading a listing (e.g. "a v0 advertisement over smart HTTP"):
 * the name keeps different readings of the same bytes apart, and `V` is what
 * that reading yields. Names are unique per process, so a key never yields a
 * value of another type.
 */
export class MemoKind<V> {
  private static readonly names = new Set<string>();

  /** @param sizeOf bytes a value holds besides its key (buffers it keeps), counted against the memo's byte bound. */
  constructor(
    readonly name: string,
    readonly sizeOf: (value: V) => number = () => 0,
  ) {
    if (MemoKind.names.has(name)) throw new Error(`memo kind ${name} defined twice`);
    MemoKind.names.add(name);
  }
}

export interface VerdictMemoBounds {
  /** Entries kept at most (least recently used go first). */
  maxEntries: number;
  /** Bytes kept at most: keys, values' own buffers (MemoKind.sizeOf) and a fixed overhead per entry. */
  maxBytes: number;
  /** Listings shorter than this are computed every time: cheap to parse, and they would crowd the large ones out. */
  minListingBytes: number;
}

/** 512 listings, 16 MB (a 5,000-ref listing's kept lines are ≈ 330 KB), from 2 KB up (≈ 20 refs). */
export const DEFAULT_MEMO_BOUNDS: VerdictMemoBounds = { maxEntries: 512, maxBytes: 16 * 1024 * 1024, minListingBytes: 2048 };

/** What an entry costs beyond its key and buffers (the Map slot, the value object, the checksum string). */
const ENTRY_OVERHEAD = 256;

interface Entry {
  value: unknown;
  bytes: number;
}

export interface VerdictMemoStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
}

/** A bounded LRU of computations over listings, keyed by (kind, its parameters, SHA-256 of the bytes). */
export class VerdictMemo {
  /** Insertion order is recency order: a hit is moved to the end, eviction takes the first. */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(readonly bounds: VerdictMemoBounds = DEFAULT_MEMO_BOUNDS) {}

  /**
   * What `compute()` returns for `listing` read as `kind` with `params` (every argument
   * of the reading besides the bytes, e.g. the client's ref prefixes): memoized, or computed now.
   * `compute` must depend on nothing but `listing`, `kind` and `params`.
   */
  get<V>(kind: MemoKind<V>, params: string, listing: Buffer, compute: () => V): V {
    if (listing.length < this.bounds.minListingBytes) return compute();
    // The parameters and the length are part of the hashed key: no separator inside a parameter can make two keys meet.
    const key = createHash('sha256').update(`${kind.name}\0${params.length}\0${params}\0${listing.length}\0`).update(listing).digest('base64');
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      this.hits++;
      return hit.value as V;
    }
    this.misses++;
    const value = compute();
    const bytes = ENTRY_OVERHEAD + key.length * 2 + kind.sizeOf(value);
    if (bytes > this.bounds.maxBytes || this.bounds.maxEntries <= 0) return value;
    this.entries.set(key, { value, bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.bounds.maxEntries && this.bytes <= this.bounds.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
    return value;
  }

  stats(): VerdictMemoStats {
    return { entries: this.entries.size, bytes: this.bytes, hits: this.hits, misses: this.misses };
  }
}

/** The process's memo, shared by the HTTP, SSH and git:// read paths (one byte bound for all). */
export const LISTING_VERDICTS = new VerdictMemo();
