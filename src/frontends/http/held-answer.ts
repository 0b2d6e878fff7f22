/**
 * A backend's answer held before the client gets a byte of it, so that it can
 * be checked against the record and dropped for another leader's
 * (docs/architecture.md "Verified copies", "Reads over HTTP"). Pure parsing
 * and a stream reader; no I/O of its own.
 */
import type { Readable } from 'node:stream';
import { refsChecksum } from '../../cluster/checksum.js';
import type { LiveCopy } from '../../cluster/read-check.js';
import { LISTING_VERDICTS, MemoKind, type VerdictMemo } from '../../cluster/verdict-memo.js';
import { PktLineError, ProtocolSyntaxError, RemoteFatalError } from '../../errors.js';
import { parseDiscovery } from '../../protocol/discovery.js';
import { parseLsRefsResponse } from '../../protocol/ls-refs.js';
import { selectedByPrefixes } from '../../protocol/ls-refs-widen.js';
import { decodeAll, encodePktValue, errPktMessage, isErrPkt, type Pkt } from '../../protocol/pkt-line.js';

/**
 * Reads a stream piece by piece through one iterator, so that what is held
 * and what follows it are relayed in order without reading anything twice.
 */
export class HeldStream {
  private readonly it: AsyncIterator<Buffer>;
  private readonly parts: Buffer[] = [];
  private length = 0;
  ended = false;

  /** @param onHold told of each piece before it is held; it may refuse (throw), and the piece is then not kept. */
  constructor(
    stream: Readable,
    private readonly onHold?: (bytes: number) => void,
  ) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** What was read so far. */
  get bytes(): Buffer {
    if (this.parts.length > 1) this.parts.splice(0, this.parts.length, Buffer.concat(this.parts));
    return this.parts[0] ?? Buffer.alloc(0);
  }

  /** Reads until the stream ends, more than `cap` bytes are held, or `enough(held)` says so. */
  async fill(cap: number, enough?: (held: Buffer) => boolean): Promise<void> {
    while (!this.ended && this.length <= cap && !(enough?.(this.bytes) ?? false)) {
      const r = await this.it.next();
      if (r.done === true) this.ended = true;
      else {
        this.onHold?.(r.value.length);
        this.parts.push(r.value);
        this.length += r.value.length;
      }
    }
  }

  /** Everything read so far, then the rest of the stream. */
  async *all(): AsyncGenerator<Buffer> {
    const held = this.bytes;
    if (held.length > 0) yield held;
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done === true) this.ended = true;
      else yield r.value;
    }
  }
}

/** What a held listing showed: a checkable copy, or why it cannot be checked (it is then relayed unchecked). */
export type HeldListing = { kind: 'copy'; live: LiveCopy; out?: undefined } | { kind: 'v2' } | { kind: 'unchecked'; why: string };

/**
 * An `ERR` line of a backend (gitprotocol-pack "Pkt-Line Format") in place of
 * a listing: a missing or unexported repository, or any other failure.
 */
export function errLive(message: string): LiveCopy {
  return /not found|not exported|no such repositor|does not exist|not a git repository|does not appear to be a git repository/i.test(message)
    ? { kind: 'missing', detail: `ERR ${message}` }
    : { kind: 'failed', detail: `ERR ${message}` };
}

/**
 * The answer to `GET info/refs?service=…` (src/protocol/discovery.ts): a v0/v1
 * advertisement's checksum (peeled lines, HEAD, `.have` and an empty
 * repository's `capabilities^{}` left out, as src/cluster/checksum.ts does);
 * a v2 capability advertisement has no refs to check.
 */
export function discoveryListing(body: Buffer, service: string, memo: VerdictMemo = LISTING_VERDICTS): HeldListing {
  return memo.get(DISCOVERY, service, body, () => judgeDiscovery(body, service));
}

/** discoveryListing's reading: a pure function of the bytes and the service (src/cluster/verdict-memo.ts). */
const DISCOVERY = new MemoKind<HeldListing>('http-discovery');

function judgeDiscovery(body: Buffer, service: string): HeldListing {
  try {
    const pkts = decodeAll(body);
    // An ERR anywhere (a server that died mid-answer sends no flush after it) speaks for the whole answer.
    const err = pkts.find((p) => p.type === 'data' && isErrPkt(p.payload));
    if (err?.type === 'data') return { kind: 'copy', live: errLive(errPktMessage(err.payload)) };
    const d = parseDiscovery(pkts, service);
    if (d.version === 2) return { kind: 'v2' };
    return { kind: 'copy', live: { kind: 'refs', checksum: refsChecksum(d.advertisement.refs.filter((r) => r.name !== '.have')) } };
  } catch (err) {
    if (err instanceof RemoteFatalError) return { kind: 'copy', live: errLive(err.message) };
    if (err instanceof ProtocolSyntaxError || err instanceof PktLineError) return { kind: 'unchecked', why: err.message };
    throw err;
  }
}

/** A held ls-refs answer: its checksum, and the bytes the client gets (the lines its prefixes select). */
export type HeldLsRefs = { kind: 'copy'; live: LiveCopy; out: Buffer } | { kind: 'unchecked'; why: string };

/**
 * The answer to a widened ls-refs (src/protocol/ls-refs-widen.ts): the whole
 * listing up to its flush is checked; the client gets the lines its
 * `ref-prefix` arguments select, the flush, and whatever the backend sent
 * after it (a response-end packet) byte for byte.
 */
export function lsRefsListing(body: Buffer, prefixes: readonly string[], memo: VerdictMemo = LISTING_VERDICTS): HeldLsRefs {
  const seen = memo.get(LS_REFS, JSON.stringify(prefixes), body, () => {
    const judged = judgeLsRefs(body, prefixes);
    // The answer's own bytes are not kept: the caller's identical body stands in for them.
    return judged.kind === 'copy' && judged.out.equals(body) ? { ...judged, out: 'body' as const } : judged;
  });
  return seen.kind === 'copy' && seen.out === 'body' ? { ...seen, out: body } : (seen as HeldLsRefs);
}

/** lsRefsListing's reading: a pure function of the bytes and the client's prefixes; `out` kept unless it is the answer itself. */
const LS_REFS = new MemoKind<HeldLsRefs | { kind: 'copy'; live: LiveCopy; out: 'body' }>('http-ls-refs', (v) => (v.kind === 'copy' && v.out !== 'body' ? v.out.length : 0));

function judgeLsRefs(body: Buffer, prefixes: readonly string[]): HeldLsRefs {
  let pkts: Pkt[];
  try {
    pkts = decodeAll(body);
  } catch (err) {
    return { kind: 'unchecked', why: (err as Error).message };
  }
  const first = pkts[0];
  if (first?.type === 'data' && isErrPkt(first.payload)) return { kind: 'copy', live: errLive(errPktMessage(first.payload)), out: body };
  const flush = pkts.findIndex((p) => p.type === 'flush');
  if (flush < 0) return { kind: 'unchecked', why: 'ls-refs answer without its flush' };
  const listing = pkts.slice(0, flush);
  try {
    const entries = parseLsRefsResponse(listing).filter((e) => e.unborn !== true);
    const live: LiveCopy = { kind: 'refs', checksum: refsChecksum(entries) };
    const kept = listing.filter((p) => p.type === 'data' && selectedByPrefixes(p.payload, prefixes));
    return { kind: 'copy', live, out: Buffer.concat([...kept, ...pkts.slice(flush)].map(encodePktValue)) };
  } catch (err) {
    if (err instanceof RemoteFatalError) return { kind: 'copy', live: errLive(err.message), out: body };
    if (err instanceof ProtocolSyntaxError || err instanceof PktLineError) return { kind: 'unchecked', why: err.message };
    throw err;
  }
}

/** Whether the held bytes hold the first pkt-line whole (or cannot be pkt-lines at all). */
export function firstPktComplete(held: Buffer): boolean {
  if (held.length < 4) return false;
  const len = Number.parseInt(held.toString('latin1', 0, 4), 16);
  return !Number.isInteger(len) || len < 4 || held.length >= len;
}

/** An `ERR` first packet of an upload-pack answer (gitprotocol-pack): its message, or undefined. */
export function firstPktError(held: Buffer): string | undefined {
  if (!firstPktComplete(held) || held.length < 8) return undefined;
  const len = Number.parseInt(held.toString('latin1', 0, 4), 16);
  if (!Number.isInteger(len) || len < 8) return undefined;
  const payload = held.subarray(4, len);
  return isErrPkt(payload) ? errPktMessage(payload) : undefined;
}

/**
 * Watches relayed upload-pack bytes for a failure the client sees: an `ERR`
 * packet, or a side-band 3 packet (gitprotocol-pack "Packfile Data": fatal
 * error). It reads pkt-line lengths and the first bytes of each payload only,
 * never holding or copying a pack; it stops at the first bytes that are no
 * pkt-line (a pack sent without side-band).
 */
export class FailureWatch {
  private head = '';
  /** Payload bytes of the current packet not seen yet. */
  private skip = 0;
  private readonly lead = Buffer.alloc(4);
  private leadLength = 0;
  private leadWant = 0;
  private stopped = false;
  failure: string | undefined;

  write(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && !this.stopped) {
      if (this.skip === 0) {
        const n = Math.min(4 - this.head.length, chunk.length - i);
        this.head += chunk.toString('latin1', i, i + n);
        i += n;
        if (this.head.length < 4) return;
        const len = /^[0-9a-fA-F]{4}$/.test(this.head) ? Number.parseInt(this.head, 16) : -1;
        this.head = '';
        if (len < 0 || len === 3) this.stopped = true;
        else if (len > 4) {
          this.skip = len - 4;
          this.leadLength = 0;
          this.leadWant = Math.min(4, this.skip);
        }
        continue;
      }
      const n = Math.min(this.skip, chunk.length - i);
      if (this.leadLength < this.leadWant) {
        const take = Math.min(this.leadWant - this.leadLength, n);
        chunk.copy(this.lead, this.leadLength, i, i + take);
        this.leadLength += take;
        if (this.leadLength === this.leadWant) this.inspect();
      }
      this.skip -= n;
      i += n;
    }
  }

  private inspect(): void {
    const lead = this.lead.subarray(0, this.leadLength);
    if (lead[0] === 3) this.failure = 'side-band 3 (fatal error)';
    else if (lead.length === 4 && isErrPkt(lead)) this.failure = 'ERR packet';
    if (this.failure !== undefined) this.stopped = true;
  }
}
