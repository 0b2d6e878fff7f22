/**
 * A TCP relay in front of one backend's web server that loses the keep-alive
 * race on purpose: a connection that has already carried a request and its
 * answer is reset the moment the first bytes of a later request matching
 * `resetOn` arrive, before the server sees them. That is what a server closing
 * an idle kept-alive connection (its keep-alive timeout) does to a client that
 * reuses the connection at that very moment; here it happens every time.
 *
 *   const relay = await startKeepAliveRelay(backend.httpUrl, /^POST [^\r\n]*git-receive-pack/);
 *   startGitha(cluster, { backends: { b1: { http: relay.httpUrl } } });
 *   relay.resets;      // how many connections it reset
 *
 * It stops when the test finishes.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';

export interface KeepAliveRelay {
  /** The backend's base URL with the relay's port, e.g. http://127.0.0.1:P/git/ */
  readonly httpUrl: string;
  /** Connections reset as a later request arrived. */
  readonly resets: number;
  /** Connections accepted. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startKeepAliveRelay(backendUrl: string, resetOn: RegExp): Promise<KeepAliveRelay> {
  const target = new URL(backendUrl);
  const sockets = new Set<Socket>();
  let resets = 0;
  let connections = 0;
  const server = createServer((client) => {
    connections++;
    sockets.add(client);
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    sockets.add(upstream);
    // A later request starts with the first bytes the client sends after the
    // server began to answer (no client here pipelines requests).
    let answered = false;
    upstream.on('data', (chunk: Buffer) => {
      answered = true;
      client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      if (answered && resetOn.test(chunk.toString('latin1'))) {
        resets++;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      answered = false;
      upstream.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  const relay: KeepAliveRelay = {
    httpUrl: `${target.protocol}//127.0.0.1:${port}${target.pathname}`,
    get resets() {
      return resets;
    },
    get connections() {
      return connections;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  onTestFinished(() => relay.close());
  return relay;
}
