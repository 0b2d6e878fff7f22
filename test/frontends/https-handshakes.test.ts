/**
 * listen.https's handshakes (src/frontends/http/https.ts): a connection is
 * counted by the HTTP front end's per-client limit only once its handshake is
 * done, so handshakes in progress have a per-address cap of their own. Without
 * it one address that opens TCP connections and never sends a ClientHello
 * fills http.maxConnections for everyone until http.headersTimeoutMs.
 */
import { createServer as createHttpServer } from 'node:http';
import { connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpsServer, type HttpsFrontend } from '../../src/frontends/http/https.js';
import { TestCa } from '../support/tls.js';

const opened: Socket[] = [];

function stall(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
    // A refused one is reset: its 'close' is what the test waits for.
    s.on('error', () => {});
    s.once('close', () => reject(new Error('closed before connecting')));
    opened.push(s);
  });
}

function handshake(port: number, ca: string, localAddress = '127.0.0.1'): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const tcp = tcpConnect({ host: '127.0.0.1', port, localAddress });
    const s = tlsConnect({ socket: tcp, servername: 'localhost', ca }, () => resolve(s));
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the handshake')));
    opened.push(s);
  });
}

/**
 * A listen.https front end on a free port with a cap of 2 pending handshakes per client, torn down after the
 * describe block; `proxyProtocolFrom`: the balancers it takes PROXY headers from.
 */
function useHttps(proxyProtocolFrom: string[] = []): { port: () => number; caPem: () => string } {
  const dir = mkdtempSync(join(tmpdir(), 'githa-https-'));
  const http = createHttpServer((_req, res) => res.end('ok'));
  let https: HttpsFrontend;
  let port = 0;
  let caPem = '';
  beforeAll(async () => {
    const ca = await TestCa.create(dir);
    const server = await ca.issue('server', { cn: 'localhost', server: true });
    caPem = readFileSync(ca.cert, 'utf8');
    https = createHttpsServer(
      http,
      { cert: server.cert, key: server.key, minVersion: 'TLSv1.2', clientCertificates: 'off' },
      pino({ level: 'silent' }),
      { maxConnections: 100, maxConnectionsPerClient: 2, headersTimeoutMs: 120_000 },
      proxyProtocolFrom,
    );
    await new Promise<void>((resolve) => https.listener.listen(0, '127.0.0.1', resolve));
    port = (https.listener.address() as AddressInfo).port;
  });
  afterAll(() => {
    // TLS sockets before the TCP sockets under them (pushed later): destroying a client's TCP socket under a live
    // TLSSocket first crashes node (SIGSEGV, node 20-24) in this test's own client.
    for (const s of [...opened].reverse()) s.destroy();
    https.close();
    http.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { port: () => port, caPem: () => caPem };
}

describe('HTTPS handshakes in progress', () => {
  const listening = useHttps();

  it('closes a connection over the per-address cap of pending handshakes; other addresses and finished handshakes are not counted', async () => {
    // Finished handshakes are the HTTP limiter's to count: three open at once with a cap of 2.
    const done = [await handshake(listening.port(), listening.caPem()), await handshake(listening.port(), listening.caPem()), await handshake(listening.port(), listening.caPem())];
    expect(done.every((s) => s.authorized && !s.destroyed)).toBe(true);

    await stall(listening.port());
    await stall(listening.port());
    const third = await stall(listening.port());
    // Closed by githa at once, not after headersTimeoutMs.
    await new Promise<void>((resolve) => (third.destroyed ? resolve() : third.once('close', () => resolve())));

    // Another address still gets through while 127.0.0.1 holds its two.
    const other = await handshake(listening.port(), listening.caPem(), '127.0.0.2');
    expect(other.authorized).toBe(true);
  });
});

/** Behind a trusted balancer (listen.proxyProtocolFrom) the cap counts the address the PROXY header names, not the balancer's. */
describe('HTTPS handshakes in progress behind a PROXY-protocol balancer', () => {
  const BALANCER = '127.0.0.5';
  const listening = useHttps([`${BALANCER}/32`]);

  /** A connection from the balancer whose PROXY v1 header names `client`; resolves once the header is sent. */
  function viaBalancer(client: string): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect({ host: '127.0.0.1', port: listening.port(), localAddress: BALANCER }, () => {
        s.write(`PROXY TCP4 ${client} 127.0.0.1 40000 443\r\n`, () => resolve(s));
      });
      s.on('error', () => {});
      s.once('close', () => reject(new Error('closed before connecting')));
      opened.push(s);
    });
  }

  it('closes the third pending handshake of one named client, while another client through the same balancer completes its own', async () => {
    await viaBalancer('198.51.100.1');
    await viaBalancer('198.51.100.1');
    const third = await viaBalancer('198.51.100.1');
    await new Promise<void>((resolve) => (third.destroyed ? resolve() : third.once('close', () => resolve())));

    const tcp = await viaBalancer('198.51.100.2');
    const other = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: tcp, servername: 'localhost', ca: listening.caPem() }, () => resolve(s));
      s.once('error', reject);
      opened.push(s);
    });
    expect(other.authorized).toBe(true);
  });
});
