/**
 * The benchmark's floor proxies (tools/bench/floor-proxy.ts): a TCP relay and a
 * minimal HTTP proxy, both passing a request and a streamed answer through
 * unchanged, in front of a real HTTP server on 127.0.0.1.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFloorProxies } from '../../tools/bench/floor-proxy.js';

let server: Server;
let ports: Awaited<ReturnType<typeof startFloorProxies>>;

beforeAll(async () => {
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-path': req.url ?? '' });
      // A chunked answer of 1 MB in 16 KB writes, echoing the body's length first.
      res.write(`${Buffer.concat(parts).length}\n`);
      for (let i = 0; i < 64; i++) res.write(Buffer.alloc(16 * 1024, i));
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ports = await startFloorProxies((server.address() as AddressInfo).port);
});

afterAll(() => {
  ports?.close();
  server.closeAllConnections();
  server.close();
});

function post(port: number, body: Buffer): Promise<{ status: number; path: string; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/git/r.git/git-upload-pack', agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, path: String(res.headers['x-path']), bytes: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('floor proxies', () => {
  it.each(['tcp', 'http', 'undici'] as const)('the %s proxy passes the request and a 1 MB chunked answer through unchanged', async (kind) => {
    const r = await post(ports[kind], Buffer.alloc(3000, 7));
    expect(r.status).toBe(200);
    expect(r.path).toBe('/git/r.git/git-upload-pack');
    expect(r.bytes.subarray(0, 5).toString()).toBe('3000\n');
    expect(r.bytes.length).toBe(5 + 64 * 16 * 1024);
    expect(r.bytes[5 + 63 * 16 * 1024]).toBe(63);
  });
});
