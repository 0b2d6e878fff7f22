/**
 * A TCP relay on 127.0.0.1 that can hold the replies of its upstream: the
 * chaos harness puts one between each githa and redis-server ("slow Redis
 * replies" to that githa only; `DEBUG SLEEP` would stall every client), and
 * tests put one in front of a backend. Requests pass at once; each reply
 * chunk is passed on `delayMs` after it arrived, in order. A closed side
 * closes the other once the held replies are out.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface DelayRelay {
  readonly port: number;
  /** How long a reply chunk arriving from now on is held (0: passed straight on). */
  delayMs: number;
  /** Replies held right now, over all connections. */
  readonly held: number;
  /** Resolves once nothing is held (polled; bounded by `timeoutMs`). */
  drained(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startDelayRelay(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<DelayRelay> {
  const sockets = new Set<Socket>();
  let held = 0;
  const relay = {
    port: 0,
    delayMs: 0,
    get held(): number {
      return held;
    },
    async drained(timeoutMs = 30_000): Promise<void> {
      const deadline = performance.now() + timeoutMs;
      while (held > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    },
    close: (): Promise<void> =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, upstreamHost);
    sockets.add(client);
    sockets.add(upstream);
    const queue: { data: Buffer; at: number }[] = [];
    let timer: NodeJS.Timeout | undefined;
    let upstreamEnded = false;
    const pump = (): void => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && queue[0]!.at <= now) {
        client.write(queue.shift()!.data);
        held--;
      }
      if (queue.length > 0) timer = setTimeout(pump, queue[0]!.at - now);
      else if (upstreamEnded) client.end();
    };
    const drop = (): void => {
      if (timer) clearTimeout(timer);
      held -= queue.length;
      queue.length = 0;
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      queue.push({ data: d, at: performance.now() + relay.delayMs });
      held++;
      if (!timer) pump();
    });
    upstream.on('end', () => {
      upstreamEnded = true;
      if (!timer) pump();
    });
    client.on('end', () => upstream.end());
    client.on('close', drop);
    upstream.on('close', () => {
      if (queue.length === 0) drop();
    });
    client.on('error', drop);
    upstream.on('error', drop);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  relay.port = (server.address() as { port: number }).port;
  return relay;
}
