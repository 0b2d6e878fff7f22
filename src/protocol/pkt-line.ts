/**
 * pkt-line framing (gitprotocol-common "pkt-line Format", gitprotocol-v2
 * "Packet-Line Framing").
 *
 * A pkt-line is a 4-digit hexadecimal length (which counts the 4 length bytes
 * themselves) followed by that many bytes minus four of payload. Lengths 0, 1
 * and 2 are the special packets flush-pkt, delim-pkt and response-end-pkt
 * (the last two only mean something in protocol v2, but they are unambiguous,
 * so the decoder always reports them). Length 3 is impossible, and the longest
 * legal pkt-line is 65520 bytes.
 *
 * The decoder is incremental and 8-bit clean: payloads are returned as Buffers
 * (sub-arrays of the written chunks where possible, so pack data is neither
 * copied nor decoded), and text is only produced on request by `pktText`.
 */
import { LimitExceededError, PktLineError, ProtocolSyntaxError } from '../errors.js';

/** gitprotocol-common: an implementation MUST NOT send a pkt-line longer than this (header included). */
export const MAX_PKT_LEN = 65520;
/** gitprotocol-common: "The maximum length of a pkt-line's data component is 65516 bytes." */
export const MAX_PKT_PAYLOAD = 65516;
const HEADER_LEN = 4;

export type Pkt =
  | { type: 'data'; payload: Buffer }
  | { type: 'flush' }
  | { type: 'delim' }
  | { type: 'response-end' };

/** "0000": end of a message (v0/v1 and v2). */
export const FLUSH_PKT: Buffer = Buffer.from('0000', 'latin1');
/** "0001": separates the sections of a v2 message (gitprotocol-v2). */
export const DELIM_PKT: Buffer = Buffer.from('0001', 'latin1');
/** "0002": end of a response on stateless (HTTP) connections (gitprotocol-v2). */
export const RESPONSE_END_PKT: Buffer = Buffer.from('0002', 'latin1');

/** Encodes one data pkt-line. Strings are encoded as UTF-8 and are sent as given (add the '\n' yourself). */
export function encodePkt(payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (body.length > MAX_PKT_PAYLOAD) {
    throw new LimitExceededError(
      `pkt-line payload of ${body.length} bytes exceeds the maximum of ${MAX_PKT_PAYLOAD}`,
    );
  }
  const out = Buffer.allocUnsafe(HEADER_LEN + body.length);
  out.write((HEADER_LEN + body.length).toString(16).padStart(HEADER_LEN, '0'), 0, 'latin1');
  body.copy(out, HEADER_LEN);
  return out;
}

/** Encodes a decoded packet back to bytes (special packets included). */
export function encodePktValue(pkt: Pkt): Buffer {
  switch (pkt.type) {
    case 'data':
      return encodePkt(pkt.payload);
    case 'flush':
      return FLUSH_PKT;
    case 'delim':
      return DELIM_PKT;
    case 'response-end':
      return RESPONSE_END_PKT;
  }
}

/** Encodes a sequence of packets: strings and Buffers are data packets, Pkt objects are encoded as such. */
export function encodePkts(items: ReadonlyArray<Buffer | string | Pkt>): Buffer {
  return Buffer.concat(
    items.map((item) =>
      typeof item === 'string' || Buffer.isBuffer(item) ? encodePkt(item) : encodePktValue(item),
    ),
  );
}

/**
 * The text of a textual pkt-line: UTF-8, with ONE trailing LF removed.
 * gitprotocol-common: receivers MUST treat lines the same with or without the LF.
 * Invalid UTF-8 becomes U+FFFD; use `pktTextStrict` when that must not happen.
 */
export function pktText(payload: Buffer): string {
  const end = payload.length > 0 && payload[payload.length - 1] === 0x0a ? payload.length - 1 : payload.length;
  return payload.toString('utf8', 0, end);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Like `pktText`, but invalid UTF-8 raises ProtocolSyntaxError instead of being
 * replaced: used for values (ref names, paths) that must round-trip exactly.
 */
export function pktTextStrict(payload: Buffer, what: string): string {
  const end = payload.length > 0 && payload[payload.length - 1] === 0x0a ? payload.length - 1 : payload.length;
  return decodeUtf8Strict(payload.subarray(0, end), what);
}

/** Decodes UTF-8, raising ProtocolSyntaxError on invalid sequences. */
export function decodeUtf8Strict(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ProtocolSyntaxError(`${what} is not valid UTF-8`);
  }
}

/** Value of one ASCII hex digit (either case, as git's hexval() accepts), or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * The length a 4-byte pkt-line header gives; PktLineError for bad hex, 0003
 * (gitprotocol-v2: 0000 flush, 0001 delim, 0002 response-end; 0003 means
 * nothing) and lengths over MAX_PKT_LEN.
 */
function pktLength(header: Uint8Array): number {
  let len = 0;
  for (let i = 0; i < HEADER_LEN; i++) {
    const v = hexDigit(header[i] as number);
    if (v < 0) throw new PktLineError(`invalid pkt-line length header ${JSON.stringify(Buffer.from(header).toString('latin1'))}`);
    len = len * 16 + v;
  }
  if (len === 3) throw new PktLineError('invalid pkt-line length 0003');
  if (len > MAX_PKT_LEN) throw new PktLineError(`pkt-line length ${len} exceeds the maximum of ${MAX_PKT_LEN}`);
  return len;
}

/**
 * Checks that a byte stream is a sequence of well-framed pkt-lines without
 * holding it: only each header's 4 bytes are looked at, payloads are counted
 * and skipped. For request bodies that are pkt-lines throughout (an
 * upload-pack request), checked before they are forwarded.
 */
export class PktFramingCheck {
  private readonly header = Buffer.alloc(HEADER_LEN);
  private headerBytes = 0;
  /** Payload bytes of the current packet still to come. */
  private remaining = 0;

  /** Throws PktLineError at the first malformed header in `chunk` (the check stays failed: a broken stream has no next packet). */
  write(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        continue;
      }
      this.header[this.headerBytes++] = chunk[i++] as number;
      if (this.headerBytes < HEADER_LEN) continue;
      const len = pktLength(this.header);
      this.headerBytes = 0;
      this.remaining = len < HEADER_LEN ? 0 : len - HEADER_LEN;
    }
  }

  /** Throws PktLineError when the stream stopped inside a packet. */
  end(): void {
    if (this.headerBytes > 0 || this.remaining > 0) throw new PktLineError('truncated pkt-line at the end of the request body');
  }
}

/**
 * Incremental pkt-line decoder. Bytes are kept as a list of chunks (no
 * quadratic concatenation); a payload that lies within one chunk is returned
 * as a zero-copy sub-array of it.
 */
export class PktLineDecoder {
  private chunks: Buffer[] = [];
  /** Index of the first chunk that still has unconsumed bytes. */
  private head = 0;
  /** Bytes of chunks[head] already consumed. */
  private offset = 0;
  private length = 0;
  /** Packets of an unfinished `readMessage()` call, returned first by `next()`. */
  private pending: Pkt[] = [];
  private pendingBytes = 0;

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Bytes written but not yet returned as packets. */
  get bufferedLength(): number {
    return this.length;
  }

  /**
   * The next complete packet, or undefined when more bytes are needed.
   * Throws PktLineError on a malformed header; the bytes stay buffered, so the
   * decoder keeps throwing: a broken stream cannot be resynchronised.
   */
  next(): Pkt | undefined {
    if (this.pending.length > 0) {
      const pkt = this.pending.shift() as Pkt;
      this.pendingBytes -= pkt.type === 'data' ? pkt.payload.length : 0;
      return pkt;
    }
    return this.decodeOne();
  }

  /**
   * All packets up to (and excluding) the next flush-pkt, once that flush has
   * arrived; undefined while it has not (packets read so far are kept and
   * returned by later calls, or by `next()`). Throws LimitExceededError when
   * the payloads of the message exceed `maxBytes`.
   */
  readMessage(maxBytes = Number.POSITIVE_INFINITY): Pkt[] | undefined {
    for (;;) {
      const pkt = this.decodeOne();
      if (pkt === undefined) return undefined;
      if (pkt.type === 'flush') {
        const message = this.pending;
        this.pending = [];
        this.pendingBytes = 0;
        return message;
      }
      if (pkt.type === 'data') {
        this.pendingBytes += pkt.payload.length;
        if (this.pendingBytes > maxBytes) {
          throw new LimitExceededError(`pkt-line message exceeds ${maxBytes} bytes`);
        }
      }
      this.pending.push(pkt);
    }
  }

  /**
   * Every buffered byte not yet returned as a packet, and clears the decoder:
   * used to switch from pkt-lines to raw data (the pack after a push's command
   * list). Packets held by an unfinished `readMessage()` are re-encoded first.
   */
  rest(): Buffer {
    const parts: Buffer[] = this.pending.map(encodePktValue);
    for (let i = this.head; i < this.chunks.length; i++) {
      const chunk = this.chunks[i] as Buffer;
      parts.push(i === this.head ? chunk.subarray(this.offset) : chunk);
    }
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.length = 0;
    this.pending = [];
    this.pendingBytes = 0;
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  private decodeOne(): Pkt | undefined {
    if (this.length < HEADER_LEN) return undefined;
    const len = pktLength(this.peek(HEADER_LEN));
    if (len < HEADER_LEN) {
      this.consume(HEADER_LEN);
      return len === 0 ? { type: 'flush' } : len === 1 ? { type: 'delim' } : { type: 'response-end' };
    }
    if (this.length < len) return undefined;
    this.consume(HEADER_LEN);
    return { type: 'data', payload: this.take(len - HEADER_LEN) };
  }

  /** Copies the first n buffered bytes (n is small: the header). */
  private peek(n: number): Buffer {
    const first = this.chunks[this.head] as Buffer;
    if (first.length - this.offset >= n) return first.subarray(this.offset, this.offset + n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let i = this.head;
    let off = this.offset;
    while (filled < n) {
      const chunk = this.chunks[i] as Buffer;
      filled += chunk.copy(out, filled, off, Math.min(chunk.length, off + n - filled));
      i++;
      off = 0;
    }
    return out;
  }

  private consume(n: number): void {
    this.take(n);
  }

  /** Removes and returns the first n buffered bytes (caller checked availability). */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0); // an empty data packet ("0004"); there may be no chunk left
    this.length -= n;
    const first = this.chunks[this.head] as Buffer;
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) this.advanceChunk();
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.head] as Buffer;
      const count = Math.min(chunk.length - this.offset, n - filled);
      chunk.copy(out, filled, this.offset, this.offset + count);
      filled += count;
      this.offset += count;
      if (this.offset === chunk.length) this.advanceChunk();
    }
    return out;
  }

  private advanceChunk(): void {
    this.head++;
    this.offset = 0;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 64 && this.head * 2 >= this.chunks.length) {
      // Drop consumed chunks now and then, so the array does not grow forever.
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}

/** Decodes a complete buffer of pkt-lines; a trailing partial packet is a PktLineError. */
export function decodeAll(buf: Buffer): Pkt[] {
  const decoder = new PktLineDecoder();
  decoder.write(buf);
  const pkts: Pkt[] = [];
  for (let pkt = decoder.next(); pkt !== undefined; pkt = decoder.next()) pkts.push(pkt);
  if (decoder.bufferedLength > 0) {
    throw new PktLineError(`truncated pkt-line: ${decoder.bufferedLength} trailing bytes`);
  }
  return pkts;
}

/** True when the data packet's payload is an `ERR <message>` line (gitprotocol-pack "Pkt-Line Format"). */
export function isErrPkt(payload: Buffer): boolean {
  return payload.length >= 4 && payload.toString('latin1', 0, 4) === 'ERR ';
}

/** The message of an `ERR <message>` packet. */
export function errPktMessage(payload: Buffer): string {
  return pktText(payload.subarray(4));
}
