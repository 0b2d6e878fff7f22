/**
 * A backend's ref listing held whole before any byte of it reaches the client,
 * so that githa can check it against the record (docs/architecture.md
 * "Verified copies"), on the stateful transports (SSH, git://):
 *
 * - protocol v0/v1: the server speaks first, its reference advertisement ends
 *   with a flush-pkt (gitprotocol-pack "Reference Discovery"), and then it
 *   waits for the client;
 * - protocol v2: the server's first message is a capability advertisement
 *   (gitprotocol-v2 "Capability Advertisement"), without refs; the refs come
 *   as the answer to the client's `ls-refs` command, `*ref flush-pkt`
 *   (gitprotocol-v2 "ls-refs").
 *
 * Everything here is pure: bytes in, packets and bytes out.
 */
import { parseAdvertisement } from './advertisement.js';
import { selectedByPrefixes } from './ls-refs-widen.js';
import { parseLsRefsResponse } from './ls-refs.js';
import { encodePkt, errPktMessage, FLUSH_PKT, isErrPkt, type Pkt, PktLineDecoder, pktText } from './pkt-line.js';

export interface HeldMessage {
  /** The message's packets, up to and excluding its flush. */
  pkts: Pkt[];
  /** The message's bytes exactly as received, its flush included. */
  bytes: Buffer;
  /** Bytes received after the flush (they belong to what follows). */
  rest: Buffer;
}

/**
 * Collects one pkt-line message (packets up to a flush-pkt) from chunks as
 * they arrive, keeping the bytes as received. A message whose bytes exceed
 * `maxBytes` is not held further ('over-cap'). Throws PktLineError on bytes
 * that are not pkt-lines.
 */
export class MessageHold {
  private readonly decoder = new PktLineDecoder();
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxBytes: number) {}

  /** Adds a chunk: the message once its flush arrived, 'over-cap', or undefined while more is needed. */
  write(chunk: Buffer): HeldMessage | 'over-cap' | undefined {
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.decoder.write(chunk);
    const pkts = this.decoder.readMessage();
    if (pkts === undefined) return this.size > this.maxBytes ? 'over-cap' : undefined;
    const rest = this.decoder.rest();
    const all = this.held();
    const bytes = all.subarray(0, all.length - rest.length);
    if (bytes.length > this.maxBytes) return 'over-cap';
    return { pkts, bytes, rest };
  }

  /** Every byte received so far. */
  held(): Buffer {
    return this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
  }
}

/** What a backend's first message says. */
export type FirstMessage =
  /** An `ERR <message>` packet instead of an advertisement: git daemon's "no such repository", "access denied or repository not exported" (gitprotocol-pack "Pkt-Line Format"). */
  | { kind: 'refused'; message: string }
  /** "version 2": a capability advertisement (gitprotocol-v2 "Capability Advertisement"). */
  | { kind: 'v2' }
  /** A v0/v1 reference advertisement (an empty one included). */
  | { kind: 'v0' };

export function classifyFirstMessage(pkts: readonly Pkt[]): FirstMessage {
  const first = pkts[0];
  if (first === undefined || first.type !== 'data') return { kind: 'v0' };
  if (isErrPkt(first.payload)) return { kind: 'refused', message: errPktMessage(first.payload) };
  return pktText(first.payload) === 'version 2' ? { kind: 'v2' } : { kind: 'v0' };
}

/**
 * Whether two v2 capability advertisements (their packets, flush excluded)
 * offer the same: equal packet for packet, but for `agent=` (gitprotocol-v2
 * "agent": informational only, and what two hosts running different git
 * releases differ in first). A client that read one may go on with the other.
 */
export function sameCapabilities(a: readonly Pkt[], b: readonly Pkt[]): boolean {
  const offered = (pkts: readonly Pkt[]): string[] =>
    pkts.map((p) => (p.type === 'data' ? `data ${p.payload.toString('latin1')}` : p.type)).filter((line) => !/^data agent=/.test(line));
  const x = offered(a);
  const y = offered(b);
  return x.length === y.length && x.every((line, i) => line === y[i]);
}

/** The message of an `ERR` packet that starts `bytes` (a server that refused and closed before any flush), if any. */
export function leadingErr(bytes: Buffer): string | undefined {
  const decoder = new PktLineDecoder();
  decoder.write(bytes);
  try {
    const pkt = decoder.next();
    return pkt?.type === 'data' && isErrPkt(pkt.payload) ? errPktMessage(pkt.payload) : undefined;
  } catch {
    return undefined;
  }
}

export interface ListedRef {
  name: string;
  oid: string;
}

/**
 * The refs of a v0/v1 advertisement (gitprotocol-pack "Reference Discovery"):
 * no peeled "^{}" lines, no "capabilities^{}" pseudo-ref. Throws on a
 * malformed advertisement or an ERR packet.
 */
export function advertisedRefs(pkts: Pkt[]): ListedRef[] {
  return parseAdvertisement(pkts).refs;
}

/**
 * A held `ls-refs` answer to a widened request (src/protocol/ls-refs-widen.ts):
 * every ref, for the check (an unborn HEAD is listed as HEAD, which the
 * checksum skips), and the bytes to pass on: only the lines the client's own
 * `ref-prefix` arguments select, each packet as the backend sent it, and the
 * flush. Throws on a malformed answer or an ERR packet.
 */
export function lsRefsListing(pkts: Pkt[], prefixes: readonly string[]): { refs: ListedRef[]; forward: Buffer } {
  const refs = parseLsRefsResponse(pkts).map((e) => ({ name: e.name, oid: e.oid }));
  const parts: Buffer[] = [];
  for (const pkt of pkts) {
    if (pkt.type === 'data' && selectedByPrefixes(pkt.payload, prefixes)) parts.push(encodePkt(pkt.payload));
  }
  parts.push(FLUSH_PKT);
  return { refs, forward: Buffer.concat(parts) };
}
