/**
 * A TCP relay on 127.0.0.1 that can hold what its clients send: while
 * `hold()` is on, requests are kept (in order) and reach the upstream only
 * once `pass()` is called, so a test can keep one Redis command from landing
 * (a lock's release) while the process that sent it goes on. Replies pass at
 * once. tools/chaos/delay-relay.ts holds replies instead.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface GateRelay {
  readonly port: number;
  /** Requests sent from now on are held. */
  hold(): void;
  /** Sends the held requests on, and the later ones straight away. */
  pass(): void;
  /** Request chunks held right now. */
  readonly held: number;
  close(): Promise<void>;
}

export async function startGateRelay(upstreamPort: number): Promise<GateRelay> {
  const sockets = new Set<Socket>();
  let holding = false;
  const queued: { to: Socket; data: Buffer }[] = [];
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (data: Buffer) => {
      if (holding) queued.push({ to: upstream, data });
      else upstream.write(data);
    });
    upstream.on('data', (data: Buffer) => client.write(data));
    client.on('close', drop);
    upstream.on('close', drop);
    client.on('error', drop);
    upstream.on('error', drop);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    hold: () => {
      holding = true;
    },
    pass: () => {
      holding = false;
      for (const { to, data } of queued.splice(0)) if (!to.destroyed) to.write(data);
    },
    get held() {
      return queued.length;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
