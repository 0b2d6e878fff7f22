/**
 * The floor under githa's figures: the least any Node.js proxy costs on this
 * machine. Run as its own process (`node dist-tools/tools/bench/floor-proxy.js PORT`,
 * like githa, so its CPU is its own): a plain TCP relay (net sockets piped
 * both ways: no HTTP parsing at all) and a minimal HTTP proxy (node:http
 * server + keep-alive client, headers copied, bodies piped), both in front of
 * one backend's web server. F1 measures the relay's CPU per GB for the same
 * clones, F2 the proxy's added latency for the same commands, in the same
 * run: what is left above them is githa's own cost (routing, Redis,
 * logging, safety), what is below them no Node proxy can save.
 *
 * A third, the same minimal HTTP proxy on undici's client (`stream` into the
 * response), is what tools/bench/data-path.ts compares node's HTTP client with.
 *
 * Prints one JSON line {"tcp":PORT,"http":PORT,"undici":PORT} once all listen.
 */
import { Agent, createServer as createHttpServer, request, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { Agent as UndiciAgent, stream as undiciStream } from 'undici';

const HOP = ['host', 'connection', 'keep-alive', 'transfer-encoding'];

function withoutHop(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP.includes(k)) out[k] = v;
  return out;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

export async function startFloorProxies(target: number): Promise<{ tcp: number; http: number; undici: number; close(): void }> {
  const tcp = createTcpServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  const agent = new Agent({ keepAlive: true });
  const http = createHttpServer((req, res) => {
    const up = request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  const dispatcher = new UndiciAgent({ keepAliveTimeout: 4_000 });
  const undici = createHttpServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = parts.length > 0 ? Buffer.concat(parts) : undefined;
      const method = (req.method ?? 'GET') as 'GET' | 'POST';
      undiciStream(`http://127.0.0.1:${target}${req.url ?? '/'}`, { method, headers: withoutHop(req.headers), body, dispatcher, opaque: res }, ({ statusCode, headers, opaque }) => {
        const out = opaque as ServerResponse;
        out.writeHead(statusCode, withoutHop(headers));
        return out;
      }).catch(() => res.destroy());
    });
  });
  return {
    tcp: await listen(tcp),
    http: await listen(http),
    undici: await listen(undici),
    close() {
      tcp.close();
      for (const s of [http, undici]) {
        s.closeAllConnections();
        s.close();
      }
      agent.destroy();
      void dispatcher.close();
    },
  };
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const target = Number(process.argv[2]);
  if (!Number.isInteger(target) || target <= 0) throw new Error('usage: floor-proxy.js BACKEND_PORT');
  // Failing to listen ends the process with the reason on stderr (inherited by the driver,
  // tools/bench/env.ts, which reports the exit before listening), as tools/cli/bench.ts does.
  startFloorProxies(target).then(
    ({ tcp, http, undici }) => process.stdout.write(`${JSON.stringify({ tcp, http, undici })}\n`),
    (err: unknown) => {
      process.stderr.write(`floor-proxy failed: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
  // Stops with the benchmark: the driver closes stdin or dies.
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
