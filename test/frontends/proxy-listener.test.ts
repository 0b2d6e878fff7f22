/**
 * src/frontends/proxy-listener.ts with real sockets: a node:http and a
 * node:tls server behind it, peers connecting from another loopback address
 * (127.0.0.5, the trusted balancer) or from 127.0.0.1 (untrusted).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { clientAddress, listenerFor, trustedPeers } from '../../src/frontends/proxy-listener.js';
import { createLogger } from '../../src/log.js';
import { V2_SIGNATURE } from '../../src/protocol/proxy-protocol.js';
import { waitFor } from '../support/wait.js';

const BALANCER = '127.0.0.5';
const open: Server[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

function capture(): { log: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  return { log: createLogger('info', out), lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function v2Header(address: string, port: number): Buffer {
  const body = Buffer.alloc(12);
  address.split('.').forEach((o, i) => (body[i] = Number(o)));
  body.set([127, 0, 0, 1], 4);
  body.writeUInt16BE(port, 8);
  body.writeUInt16BE(80, 10);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0x00, 0x0c]), body]);
}

async function listen(server: Server): Promise<number> {
  open.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Connects from `from`, writes each chunk in turn (a tick apart), and collects the answer until the close. */
async function exchange(port: number, from: string, chunks: Array<Buffer | string>): Promise<{ answer: string; socket: Socket }> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  let answer = '';
  socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const c of chunks) {
    socket.write(c);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise((resolve) => socket.once('close', resolve));
  return { answer, socket };
}

function httpServer(): HttpServer {
  return createHttpServer((req, res) => {
    res.setHeader('connection', 'close');
    res.end(`client ${clientAddress(req.socket)} raw ${req.socket.remoteAddress}`);
  });
}

describe('trustedPeers', () => {
  it('matches CIDR ranges, single addresses and IPv4-mapped peers; trusts nobody when empty', () => {
    const trusts = trustedPeers(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']);
    expect([trusts('10.1.2.3'), trusts('::ffff:10.1.2.3'), trusts('192.0.2.7'), trusts('2001:db8::1')]).toEqual([true, true, true, true]);
    expect([trusts('11.0.0.1'), trusts('192.0.2.8'), trusts('2001:db9::1'), trusts(undefined)]).toEqual([false, false, false, false]);
    expect(trustedPeers([])('10.1.2.3')).toBe(false);
  });
});

describe('listenerFor', () => {
  it('is the server itself when no peer is trusted', () => {
    const server = httpServer();
    expect(listenerFor(server, { trusted: [] }, capture().log)).toBe(server);
  });

  it('hands node:http the bytes after a trusted peer’s header, whole or split, and clientAddress names the header’s client', async () => {
    const port = await listen(listenerFor(httpServer(), { trusted: [`${BALANCER}/32`] }, capture().log));
    const request = 'GET / HTTP/1.1\r\nhost: x\r\n\r\n';
    const whole = await exchange(port, BALANCER, [Buffer.concat([v2Header('198.51.100.9', 4242), Buffer.from(request)])]);
    expect(whole.answer).toContain(`client 198.51.100.9 raw ${BALANCER}`);
    const split = await exchange(port, BALANCER, ['PROXY TCP4 203.0.113.', '4 127.0.0.1 5555 80\r\nGET / HT', 'TP/1.1\r\nhost: x\r\n\r\n']);
    expect(split.answer).toContain(`client 203.0.113.4 raw ${BALANCER}`);
    // LOCAL (HAProxy's health checks): the connection's own address.
    const local = await exchange(port, BALANCER, [Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0, 0]), Buffer.from(request)])]);
    expect(local.answer).toContain(`client ${BALANCER} raw ${BALANCER}`);
  });

  it('never reads a header from an untrusted peer: its PROXY line is a malformed HTTP request', async () => {
    const server = httpServer();
    const port = await listen(listenerFor(server, { trusted: [`${BALANCER}/32`] }, capture().log));
    const { answer } = await exchange(port, '127.0.0.1', ['PROXY TCP4 198.51.100.9 127.0.0.1 4242 80\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n']);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).not.toContain('198.51.100.9');
  });

  it('closes a trusted peer’s connection on a bad header or none in time, with a log line, and hands nothing on', async () => {
    const { log, lines } = capture();
    let handed = 0;
    const server = httpServer();
    server.on('connection', () => handed++);
    const port = await listen(listenerFor(server, { trusted: [`${BALANCER}/32`], headerTimeoutMs: 300 }, log));
    const bad = await exchange(port, BALANCER, ['GET / HTTP/1.1\r\nhost: x\r\n\r\n']);
    expect(bad.answer).toBe('');
    const slow = await exchange(port, BALANCER, ['PROXY TCP4 198.51.100.9']);
    expect(slow.answer).toBe('');
    const refused = lines().filter((l) => l.msg === 'PROXY protocol header refused, connection closed');
    expect(refused.map((l) => [l.peer, l.reason])).toEqual([
      [BALANCER, expect.stringContaining('no PROXY protocol header')],
      [BALANCER, 'no complete PROXY header within 300 ms'],
    ]);
    expect(handed).toBe(0);
  });

  it('keeps node:http’s headersTimeout working behind it', async () => {
    const server = createHttpServer({ connectionsCheckingInterval: 100 }, (_req, res) => res.end());
    server.headersTimeout = 400;
    server.requestTimeout = 0;
    const port = await listen(listenerFor(server, { trusted: [`${BALANCER}/32`] }, capture().log));
    const { answer } = await exchange(port, BALANCER, [v2Header('198.51.100.9', 1), 'GET / HTTP/1.1\r\n']);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('works for node:tls: the header precedes the handshake, clientAddress answers for the TLSSocket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'githa-pp-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const tls = createTlsServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }, (s) => s.end(`client ${clientAddress(s)}`));
    const port = await listen(listenerFor(tls, { trusted: [`${BALANCER}/32`] }, capture().log));
    const raw = connect({ port, host: '127.0.0.1', localAddress: BALANCER });
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.write(v2Header('198.51.100.10', 7));
    const secure = tlsConnect({ socket: raw, rejectUnauthorized: false });
    let answer = '';
    secure.on('data', (c: Buffer) => (answer += c.toString()));
    await waitFor('the TLS answer', () => answer.includes('client'), 10_000);
    expect(answer).toBe('client 198.51.100.10');
    secure.destroy();
  });
});
