/**
 * githa's own HTTP/1.1 client for fetch answers (src/frontends/http/wire-framing.ts):
 * the chunked scanner finds the payload and the message's end however the
 * bytes are cut into reads, and refuses broken framing; the header bag
 * refuses what node's ClientRequest refuses.
 */
import { describe, expect, it } from 'vitest';
import { BackendProtocolError } from '../../src/errors.js';
import { ChunkedScanner, HeaderBag } from '../../src/frontends/http/wire-framing.js';

function chunked(parts: string[], trailer = ''): Buffer {
  return Buffer.from(parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') + `0\r\n${trailer}\r\n`);
}

/** Scans `wire` cut into reads of `step` bytes; the payload, and where the message ended (absolute offset). */
function scanIn(wire: Buffer, step: number): { payload: string; end: number | undefined } {
  const s = new ChunkedScanner();
  const payload: Buffer[] = [];
  let end: number | undefined;
  for (let i = 0; i < wire.length && end === undefined; i += step) {
    const at = s.scan(wire.subarray(i, i + step), payload);
    if (s.done) end = i + at;
  }
  return { payload: Buffer.concat(payload).toString(), end };
}

describe('ChunkedScanner', () => {
  const wire = chunked(['hello ', 'chunked ', 'x'.repeat(300), 'world'], 'x-trailer: 1\r\n');
  it.each([1, 2, 3, 7, 64, 10_000])('finds the payload and the end in reads of %i bytes', (step) => {
    const extra = Buffer.concat([wire, Buffer.from('HTTP/1.1 200 OK\r\n')]);
    expect(scanIn(extra, step)).toEqual({ payload: `hello chunked ${'x'.repeat(300)}world`, end: wire.length });
  });

  it('reads chunk extensions and upper-case sizes', () => {
    expect(scanIn(Buffer.from('A;name=v\r\n0123456789\r\n0\r\n\r\n'), 4)).toEqual({ payload: '0123456789', end: 27 });
  });

  it.each([
    ['a size that is no number', 'zz\r\nab\r\n0\r\n\r\n'],
    ['no CRLF after the data', '2\r\nabX\r\n0\r\n\r\n'],
    ['a size line too long', `${'1'.repeat(5000)}\r\n`],
  ])('refuses %s', (_what, text) => {
    expect(() => scanIn(Buffer.from(text), 3)).toThrow(BackendProtocolError);
  });

  it('is not done before the last chunk and its empty line', () => {
    const s = new ChunkedScanner();
    s.scan(Buffer.from('3\r\nabc\r\n0\r\n'), []);
    expect(s.done).toBe(false);
    s.scan(Buffer.from('\r\n'), []);
    expect(s.done).toBe(true);
  });
});

describe('HeaderBag', () => {
  it('keeps names lower-case, removes and lists them', () => {
    const h = new HeaderBag({ 'X-A': '1', accept: 'b' } as never);
    h.setHeader('Content-Length', 5);
    h.removeHeader('ACCEPT');
    expect(h.getHeaderNames()).toEqual(['x-a', 'content-length']);
    expect(h.lines()).toBe('x-a: 1\r\ncontent-length: 5\r\n');
  });

  it('refuses a value with CR or LF (a header a user name could smuggle in)', () => {
    expect(() => new HeaderBag().setHeader('x-remote-user', 'alice\r\nx-evil: 1')).toThrow();
  });
});
