/**
 * githa's own HTTP/1.1 client for fetch answers (src/frontends/http/wire.ts)
 * against a scripted server on 127.0.0.1: the request it writes, and the
 * answer's body handed on as it came on the wire (chunked framing included,
 * nothing past the message's end), however the server cuts its writes.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendProtocolError, BackendUnavailableError } from '../../src/errors.js';
import { HeaderBag } from '../../src/frontends/http/wire-framing.js';
import { sendWire, type WireAnswer } from '../../src/frontends/http/wire.js';

let server: Server | undefined;

afterEach(() => {
  server?.close();
  server = undefined;
});

/** A server that reads one request (head and `content-length` body), hands it to `seen`, and runs `answer` on the socket. */
async function scripted(answer: (s: Socket) => void, seen?: (request: string) => void): Promise<number> {
  server = createServer((s) => {
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(got)?.[1] ?? 0);
      if (end >= 0 && got.length >= end + 4 + length) {
        s.removeAllListeners('data');
        seen?.(got);
        answer(s);
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function send(port: number, body = Buffer.from('0014command=fetch\n0000')): Promise<WireAnswer> {
  const headers = new HeaderBag({ 'git-protocol': 'version=2', 'content-type': 'application/x-git-upload-pack-request' });
  return sendWire({ baseUrl: `http://127.0.0.1:${port}/git/`, backendId: 'b1', method: 'POST', path: 'r/git-upload-pack', headers, body, timeoutMs: 10_000 }, () => {});
}

/** The first piece by next(), the rest by pump(): the raw bytes relayed, and the payload. */
async function relay(a: WireAnswer): Promise<{ raw: string; payload: string }> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  let payload = '';
  const first = await a.next();
  if (first) {
    out.write(first.raw);
    payload += Buffer.concat(first.payload).toString('latin1');
  }
  await a.pump(out, (p) => {
    payload += Buffer.concat(p.payload).toString('latin1');
    return [p.raw];
  });
  return { raw: Buffer.concat(parts).toString('latin1'), payload };
}

/** Writes `parts` one by one, a turn of the event loop apart (separate reads at the other end, most of the time). */
function writeApart(s: Socket, parts: string[], then?: () => void): void {
  const [head, ...rest] = parts;
  if (head === undefined) return then?.();
  s.write(head, 'latin1', () => setTimeout(() => writeApart(s, rest, then), 5));
}

describe('sendWire', () => {
  it("writes the request line, githa's headers, the body's length and the body", async () => {
    let request = '';
    const port = await scripted((s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'), (r) => (request = r));
    const a = await send(port);
    expect(a.statusCode).toBe(200);
    expect(request).toMatch(/^POST \/git\/r\/git-upload-pack HTTP\/1\.1\r\n/);
    expect(request).toContain('git-protocol: version=2\r\n');
    expect(request).toContain(`host: 127.0.0.1:${port}\r\n`);
    expect(request).toContain('content-length: 22\r\n');
    expect(request.endsWith('\r\n\r\n0014command=fetch\n0000')).toBe(true);
  });

  it('hands on a chunked body as it came, up to its last chunk and not past it, however it is cut', async () => {
    const wire = ['5\r\nhel', 'lo\r\n', '6\r\n wor', 'ld\r\n0\r', '\n', 'x-t: 1\r\n\r\n'];
    const port = await scripted((s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-type: x\r\ntransfer-encoding: chunked\r\n\r\n');
      // Bytes after the message's end on the same connection are not part of it.
      writeApart(s, [...wire, 'GARBAGE']);
    });
    const a = await send(port);
    expect(a.framing).toBe('chunked');
    expect(a.headers['content-type']).toBe('x');
    expect(await relay(a)).toEqual({ raw: wire.join(''), payload: 'hello world' });
  });

  it('hands on a Content-Length body and a close-delimited one', async () => {
    let port = await scripted((s) => writeApart(s, ['HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello', ' world', 'MORE']));
    let a = await send(port);
    expect(a.framing).toBe('length');
    expect(await relay(a)).toEqual({ raw: 'hello world', payload: 'hello world' });
    server?.close();
    port = await scripted((s) => writeApart(s, ['HTTP/1.1 200 OK\r\n\r\nhello', ' world'], () => s.end()));
    a = await send(port);
    expect(a.framing).toBe('close');
    expect(await relay(a)).toEqual({ raw: 'hello world', payload: 'hello world' });
  });

  it('skips an interim 100 answer', async () => {
    const port = await scripted((s) => s.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno'));
    const a = await send(port);
    expect(a.statusCode).toBe(404);
    const body: Buffer[] = [];
    for await (const c of a.body()) body.push(c as Buffer);
    expect(Buffer.concat(body).toString()).toBe('no');
  });

  it('fails a body cut short, and broken chunked framing, as a backend protocol error', async () => {
    let port = await scripted((s) => writeApart(s, ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', '10\r\nonly part'], () => s.destroy()));
    await expect(relay(await send(port))).rejects.toThrow(BackendProtocolError);
    server?.close();
    port = await scripted((s) => writeApart(s, ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', 'zz\r\n']));
    await expect(relay(await send(port))).rejects.toThrow(BackendProtocolError);
  });

  it('reports a refused connection as unavailable with nothing sent', async () => {
    const port = await scripted(() => {});
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    const err = await send(port).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as BackendUnavailableError).bytesSent).toBe(false);
  });
});
