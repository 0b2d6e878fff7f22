import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../src/errors.js';
import { Forwarder } from '../../src/frontends/http/forward.js';

/**
 * The forwarder against a plain HTTP server that records what arrives: which
 * headers reach a backend (Authorization passes, so existing backend auth keeps
 * working), and that a refused connection consumes nothing of the body.
 */
describe('Forwarder', () => {
  let backend: Server;
  let front: Server;
  let seen: { headers: IncomingHttpHeaders; body: string }[] = [];
  let frontPort = 0;
  const forwarder = new Forwarder({ timeoutMs: 5_000 });
  let target = '';

  beforeAll(async () => {
    backend = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    target = `http://127.0.0.1:${(backend.address() as AddressInfo).port}/git/`;
    // A githa-like front: first try a dead port, then the live backend, with the same body.
    front = createServer((req, res) => {
      const attempt = (baseUrl: string): Promise<unknown> =>
        forwarder.send(req, res, { baseUrl, backendId: 'b', path: 'r.git/git-upload-pack', body: req }).then((fwd) => {
          res.writeHead(fwd.res.statusCode ?? 502);
          fwd.res.pipe(res);
        });
      attempt('http://127.0.0.1:1/git/').catch((err: unknown) => {
        expect(err).toBeInstanceOf(BackendUnavailableError);
        expect((err as BackendUnavailableError).bytesSent).toBe(false);
        return attempt(target);
      });
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
    frontPort = (front.address() as AddressInfo).port;
  });

  afterAll(() => {
    forwarder.close();
    front.close();
    backend.close();
  });

  it('passes Authorization and Git-Protocol on, drops hop-by-hop and identity headers, and retries a refused connection with the whole body', async () => {
    seen = [];
    const body = 'x'.repeat(200_000);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          port: frontPort,
          method: 'POST',
          path: '/r.git/git-upload-pack',
          headers: {
            authorization: 'Basic YWxpY2U6czNjcmV0',
            'git-protocol': 'version=2',
            'content-type': 'application/x-git-upload-pack-request',
            'proxy-authorization': 'Basic bm8=',
            connection: 'keep-alive, x-secret-hop',
            'x-secret-hop': 'root',
            x_remote_user: 'root',
            'x-forwarded-for': '203.0.113.9',
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(200);
    expect(seen).toHaveLength(1);
    const [got] = seen;
    expect(got!.body).toBe(body);
    expect(got!.headers.authorization).toBe('Basic YWxpY2U6czNjcmV0');
    expect(got!.headers['git-protocol']).toBe('version=2');
    expect(got!.headers['content-type']).toBe('application/x-git-upload-pack-request');
    expect(got!.headers['proxy-authorization']).toBeUndefined();
    // Identity and forwarding headers of the client go (src/frontends/http/headers.ts); githa's own X-Forwarded-For comes.
    expect(got!.headers['x-secret-hop']).toBeUndefined();
    expect(got!.headers.x_remote_user).toBeUndefined();
    expect(got!.headers['x-forwarded-for']).toBe('127.0.0.1');
  });
});
