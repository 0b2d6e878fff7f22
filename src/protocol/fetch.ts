/**
 * The protocol v2 "fetch" command (gitprotocol-v2 "fetch"): the client side
 * request encoder and an incremental reader of the response.
 *
 *   output = acknowledgements flush-pkt |
 *            [acknowledgments delim-pkt] [shallow-info delim-pkt]
 *            [wanted-refs delim-pkt] [packfile-uris delim-pkt]
 *            packfile flush-pkt
 *   packfile = PKT-LINE("packfile" LF) *PKT-LINE(%x01-03 *%x00-ff)
 *
 * Every section but the packfile is lines of text; the packfile section is
 * always multiplexed like side-band-64k. The reader never looks inside pack
 * data: band-1 payloads are handed out as (zero-copy) Buffers.
 */
import { ProtocolSyntaxError, RemoteFatalError } from '../errors.js';
import { encodeV2Command, requestCapabilities } from './command-request.js';
import { parseObjectId } from './object-id.js';
import { errPktMessage, isErrPkt, type Pkt, PktLineDecoder, pktText } from './pkt-line.js';
import { BAND_DATA, BAND_PROGRESS, parseSidebandPayload } from './sideband.js';

export interface FetchRequest {
  wants: string[];
  haves: string[];
  done: boolean;
  ofsDelta?: boolean;
  thinPack?: boolean;
  noProgress?: boolean;
  includeTag?: boolean;
  agent?: string;
  objectFormat?: string;
  /** "server-option=<option>" capability lines (only if advertised). */
  serverOptions?: string[];
}

/** Encodes "command=fetch", capabilities, delim, the arguments and the flush. */
export function encodeFetchRequest(r: FetchRequest): Buffer {
  const args: string[] = [];
  if (r.thinPack === true) args.push('thin-pack');
  if (r.noProgress === true) args.push('no-progress');
  if (r.includeTag === true) args.push('include-tag');
  if (r.ofsDelta === true) args.push('ofs-delta');
  for (const oid of r.wants) args.push(`want ${parseObjectId(oid, 'want')}`);
  for (const oid of r.haves) args.push(`have ${parseObjectId(oid, 'have')}`);
  if (r.done) args.push('done');
  return encodeV2Command('fetch', requestCapabilities(r), args);
}

export type FetchResponseEvent =
  /** acknowledgments, shallow-info, wanted-refs, packfile-uris, packfile (or a future section). */
  | { type: 'section'; name: string }
  /** A line of a non-packfile section, without its LF. */
  | { type: 'line'; section: string; text: string }
  /** Band 1 of the packfile section: raw pack bytes, not copied or decoded. */
  | { type: 'pack'; data: Buffer }
  /** Band 2: progress text meant for the user's terminal (not line-aligned). */
  | { type: 'progress'; data: Buffer }
  /** The final flush. */
  | { type: 'end' };

/** gitprotocol-v2: section names are lowercase words with dashes. */
const SECTION_RE = /^[a-z][a-z0-9-]*$/;

type State = 'header' | 'lines' | 'packfile' | 'ended';

/**
 * Reads a fetch response incrementally: write() the bytes as they arrive and
 * call next() until it returns undefined. A band-3 packet or an "ERR" packet
 * throws RemoteFatalError with the server's message. Responses requested with
 * "sideband-all" are not supported (githa never asks for it).
 */
export class FetchResponseReader {
  private readonly decoder = new PktLineDecoder();
  private state: State = 'header';
  private section = '';

  write(chunk: Buffer): void {
    this.decoder.write(chunk);
  }

  /** True once the final flush has been read (or an error ended the response). */
  get ended(): boolean {
    return this.state === 'ended';
  }

  /** Bytes after the final flush (or not yet parsed), and clears them. */
  rest(): Buffer {
    return this.decoder.rest();
  }

  next(): FetchResponseEvent | undefined {
    // Each iteration consumes one packet, so this ends when the buffer does.
    try {
      while (this.state !== 'ended') {
        const pkt = this.decoder.next();
        if (pkt === undefined) return undefined;
        const event = this.handle(pkt);
        if (event !== undefined) return event;
      }
      return undefined;
    } catch (err) {
      // A fatal error or a broken stream ends the response: nothing more is read.
      this.state = 'ended';
      throw err;
    }
  }

  /** The event for one packet; undefined for a delim (it only switches state). */
  private handle(pkt: Pkt): FetchResponseEvent | undefined {
    if (pkt.type === 'flush') {
      // A flush ends the response; a response with no section at all is not valid.
      if (this.state === 'header') throw new ProtocolSyntaxError('fetch response ended before any section');
      this.state = 'ended';
      return { type: 'end' };
    }
    if (pkt.type === 'delim') {
      // Sections are separated by delim-pkt; the packfile section is always last.
      if (this.state !== 'lines') throw new ProtocolSyntaxError('unexpected delim packet in the fetch response');
      this.state = 'header';
      return undefined;
    }
    if (pkt.type === 'response-end') throw new ProtocolSyntaxError('unexpected response-end in the fetch response');
    // "ERR" can be sent wherever a pkt-line is expected (gitprotocol-pack);
    // a side-band packet cannot start with "E", so this is unambiguous.
    if (isErrPkt(pkt.payload)) throw new RemoteFatalError(errPktMessage(pkt.payload));
    switch (this.state) {
      case 'header': {
        const name = pktText(pkt.payload);
        if (!SECTION_RE.test(name)) throw new ProtocolSyntaxError('invalid section header in the fetch response');
        this.section = name;
        this.state = name === 'packfile' ? 'packfile' : 'lines';
        return { type: 'section', name };
      }
      case 'lines':
        return { type: 'line', section: this.section, text: pktText(pkt.payload) };
      case 'packfile': {
        const frame = parseSidebandPayload(pkt.payload);
        if (frame.band === BAND_DATA) return { type: 'pack', data: frame.payload };
        if (frame.band === BAND_PROGRESS) return { type: 'progress', data: frame.payload };
        throw new RemoteFatalError(pktText(frame.payload));
      }
      default:
        throw new ProtocolSyntaxError('fetch response already ended');
    }
  }
}
