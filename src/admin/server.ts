import { createServer, type Server } from 'node:http';
import type { StateStore } from '../state/store.js';

/**
 * The admin listener: /healthz (the process is alive) and /readyz (it can
 * serve: Redis answers). Load balancers route on /readyz.
 */
export function createAdminServer(store: StateStore): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      store.ping().then(
        () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n'),
        () => res.writeHead(503, { 'content-type': 'text/plain' }).end('not ready: cluster state (Redis) unavailable\n'),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
}
