/**
 * A protocol v0 fetch in one request (gitprotocol-pack "Packfile
 * Negotiation"; over smart HTTP the stateless form of gitprotocol-http
 * "Smart Service git-upload-pack"), for a server that ignores `version=2`:
 *
 *   upload-request = want-list flush-pkt *have-line "done"
 *   want-list      = first-want *additional-want
 *   first-want     = PKT-LINE("want" SP obj-id SP capability-list)
 *
 * githa asks for no multi_ack, so the answer to "done" is at most one
 * "ACK obj-id" or "NAK" (gitprotocol-pack: "without multi_ack … the server
 * sends ACK obj-id for the first common object … then NAK if none"), then the
 * pack multiplexed on side-band (band 1 data, 2 progress, 3 fatal) and a
 * flush-pkt.
 */
import { ProtocolSyntaxError, RemoteFatalError } from '../errors.js';
import { capabilityValue } from './capabilities.js';
import { parseObjectId } from './object-id.js';
import { encodePkt, errPktMessage, FLUSH_PKT, isErrPkt, type Pkt, PktLineDecoder, pktText } from './pkt-line.js';
import { BAND_DATA, BAND_PROGRESS, parseSidebandPayload } from './sideband.js';

export interface V0FetchRequest {
  wants: readonly string[];
  haves: readonly string[];
  /** The server's capabilities (the ref advertisement's first line). */
  offered: readonly string[];
  agent?: string;
}

/**
 * Encodes the whole request. The capabilities are chosen from `offered`:
 * side-band-64k (or side-band) is required, since the pack is read from band
 * 1 only; ofs-delta and no-progress when offered; agent when the server sent
 * one (gitprotocol-capabilities "agent": only then may the client send it);
 * the object format the server named. Throws when there is no side-band or no
 * want (a fetch of nothing is a flush alone, not a request).
 */
export function encodeV0FetchRequest(r: V0FetchRequest): Buffer {
  if (r.wants.length === 0) throw new ProtocolSyntaxError('a v0 fetch needs at least one want');
  const band = r.offered.includes('side-band-64k') ? 'side-band-64k' : r.offered.includes('side-band') ? 'side-band' : undefined;
  if (band === undefined) throw new ProtocolSyntaxError('the server offers no side-band');
  const caps = [band, ...['ofs-delta', 'no-progress'].filter((c) => r.offered.includes(c))];
  if (r.agent !== undefined && r.offered.some((c) => c.startsWith('agent='))) caps.push(`agent=${r.agent}`);
  const format = capabilityValue(r.offered, 'object-format');
  if (format !== undefined) caps.push(`object-format=${format}`);
  const lines = r.wants.map((oid, i) => {
    const id = parseObjectId(oid, 'want');
    return encodePkt(i === 0 ? `want ${id} ${caps.join(' ')}\n` : `want ${id}\n`);
  });
  lines.push(FLUSH_PKT);
  for (const oid of r.haves) lines.push(encodePkt(`have ${parseObjectId(oid, 'have')}\n`));
  lines.push(encodePkt('done\n'));
  return Buffer.concat(lines);
}

export type V0FetchEvent =
  /** "NAK" or "ACK <oid>[ <status>]" before the pack, without its LF. */
  | { type: 'ack'; text: string }
  /** Band 1: raw pack bytes, not copied or decoded. */
  | { type: 'pack'; data: Buffer }
  /** Band 2: progress text. */
  | { type: 'progress'; data: Buffer }
  /** The flush-pkt after the pack. */
  | { type: 'end' };

const ACK_RE = /^(NAK|ACK [0-9a-f]{40}([0-9a-f]{24})?( (continue|common|ready))?)$/;

/**
 * Reads the answer incrementally: write() the bytes as they arrive, call
 * next() until it returns undefined. An ERR packet or band 3 throws
 * RemoteFatalError with the server's message; anything else out of place
 * throws ProtocolSyntaxError.
 */
export class V0FetchResponseReader {
  private readonly decoder = new PktLineDecoder();
  private inPack = false;
  private done = false;

  write(chunk: Buffer): void {
    this.decoder.write(chunk);
  }

  get ended(): boolean {
    return this.done;
  }

  next(): V0FetchEvent | undefined {
    if (this.done) return undefined;
    const pkt = this.decoder.next();
    if (pkt === undefined) return undefined;
    try {
      return this.handle(pkt);
    } catch (err) {
      this.done = true;
      throw err;
    }
  }

  private handle(pkt: Pkt): V0FetchEvent {
    if (pkt.type === 'flush') {
      if (!this.inPack) throw new ProtocolSyntaxError('fetch response ended before the pack');
      this.done = true;
      return { type: 'end' };
    }
    if (pkt.type !== 'data') throw new ProtocolSyntaxError(`unexpected ${pkt.type} packet in a v0 fetch response`);
    // "ERR" may come wherever a pkt-line is expected; a side-band packet starts with 1-3.
    if (isErrPkt(pkt.payload)) throw new RemoteFatalError(errPktMessage(pkt.payload));
    if (!this.inPack) {
      const first = pkt.payload[0];
      if (first !== undefined && first > 3) {
        const text = pktText(pkt.payload);
        if (!ACK_RE.test(text)) throw new ProtocolSyntaxError('expected ACK or NAK in a v0 fetch response');
        return { type: 'ack', text };
      }
      this.inPack = true;
    }
    const frame = parseSidebandPayload(pkt.payload);
    if (frame.band === BAND_DATA) return { type: 'pack', data: frame.payload };
    if (frame.band === BAND_PROGRESS) return { type: 'progress', data: frame.payload };
    throw new RemoteFatalError(pktText(frame.payload));
  }
}
