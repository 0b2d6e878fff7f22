/**
 * The HTTP/1.1 framing githa's own client (src/frontends/http/wire.ts) reads
 * and writes itself: request headers as edited before they go, and the
 * chunked body (RFC 9112 7.1) scanned as it passes. Pure code, no I/O.
 */
import { type IncomingHttpHeaders, validateHeaderName, validateHeaderValue } from 'node:http';
import { BackendProtocolError } from '../../errors.js';

/** A chunk-size line or trailer line longer than this is not HTTP (RFC 9112 7.1). */
const MAX_LINE_BYTES = 4096;

/** Request headers being edited before they go: the part of ClientRequest that githa's header edits use. */
export class HeaderBag {
  private readonly map = new Map<string, string | string[]>();

  constructor(initial: IncomingHttpHeaders = {}) {
    for (const [k, v] of Object.entries(initial)) if (v !== undefined) this.setHeader(k, v);
  }

  getHeaderNames(): string[] {
    return [...this.map.keys()];
  }

  getHeader(name: string): string | string[] | undefined {
    return this.map.get(name.toLowerCase());
  }

  /** Validated as node's ClientRequest does (no CR, LF or other control bytes reach the backend's head). */
  setHeader(name: string, value: string | number | readonly string[]): this {
    validateHeaderName(name);
    const v = Array.isArray(value) ? (value as readonly string[]).map(String) : String(value as string | number);
    for (const one of Array.isArray(v) ? v : [v]) validateHeaderValue(name, one);
    this.map.set(name.toLowerCase(), v);
    return this;
  }

  removeHeader(name: string): void {
    this.map.delete(name.toLowerCase());
  }

  /** The header lines, each ended by CRLF. */
  lines(): string {
    let out = '';
    for (const [k, v] of this.map) for (const one of Array.isArray(v) ? v : [v]) out += `${k}: ${one}\r\n`;
    return out;
  }
}

/**
 * Finds the payload in a chunked body (RFC 9112 7.1) as it passes, without
 * copying it: the size lines, the CRLF after each chunk and the trailers are
 * read, the data is sliced.
 */
export class ChunkedScanner {
  private state: 'size' | 'data' | 'crlf' | 'trailer' | 'done' = 'size';
  private line = '';
  private left = 0;

  get done(): boolean {
    return this.state === 'done';
  }

  /** The payload slices of `buf`, and where the message ended in it (buf.length if it did not). */
  scan(buf: Buffer, payload: Buffer[]): number {
    let i = 0;
    while (i < buf.length && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.left, buf.length - i);
        payload.push(buf.subarray(i, i + n));
        i += n;
        this.left -= n;
        if (this.left === 0) this.state = 'crlf';
        continue;
      }
      if (this.state === 'crlf') {
        // Exactly CRLF after the data; `line` counts what was seen of it.
        const want = this.line.length === 0 ? 0x0d : 0x0a;
        if (buf[i] !== want) throw new BackendProtocolError('bad chunked framing in a backend answer (no CRLF after a chunk)');
        i++;
        this.line += '.';
        if (this.line.length === 2) {
          this.line = '';
          this.state = 'size';
        }
        continue;
      }
      const lf = buf.indexOf(0x0a, i);
      const end = lf < 0 ? buf.length : lf;
      this.line += buf.toString('latin1', i, end);
      if (this.line.length > MAX_LINE_BYTES) throw new BackendProtocolError('bad chunked framing in a backend answer (a line too long)');
      i = end;
      if (lf < 0) break;
      i++;
      const text = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
      this.line = '';
      if (this.state === 'trailer') {
        if (text === '') this.state = 'done';
        continue;
      }
      const hex = (text.split(';', 1)[0] ?? '').trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new BackendProtocolError('bad chunked framing in a backend answer (a chunk size that is no number)');
      this.left = Number.parseInt(hex, 16);
      this.state = this.left === 0 ? 'trailer' : 'data';
    }
    return i;
  }
}
