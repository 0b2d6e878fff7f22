/**
 * A tiny HTTP "Git server" that answers canned bytes, for answers no stock
 * `git http-backend` gives on demand: an `ERR` packet in place of a listing
 * (as JGit's GitServlet and hosting front ends send for a refused repository),
 * or malformed pkt-lines. Every request to a repository it has no answer for
 * is a 404 (git http-backend's answer for a missing repository).
 *
 *   const fake = await startFakeBackend({ 'team/app.git': { body: errPkt('access denied') } });
 *   startGitha(cluster, { only: ['b1'], backends: { b1: { http: fake.httpUrl } } });
 *
 * Closed when the test finishes.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';

export interface CannedAnswer {
  /** The answer's body, for every request (info/refs and the RPCs alike). */
  body: Buffer;
  status?: number;
}

export interface FakeBackend {
  /** 'http://127.0.0.1:P/git/' */
  readonly httpUrl: string;
  /** Request lines seen ("GET /git/…"), in order. */
  readonly seen: string[];
}

/** `ERR <message>` as one pkt-line (gitprotocol-pack "Pkt-Line Format"). */
export function errPkt(message: string): Buffer {
  const payload = Buffer.from(`ERR ${message}\n`);
  return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0')), payload]);
}

export async function startFakeBackend(answers: Record<string, CannedAnswer>): Promise<FakeBackend> {
  const seen: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      // githa asks for `X` (docs/protocol.md "Where a backend keeps a repository"); git's enter_repo finds `X.git` for it.
      const repo = Object.keys(answers).find((r) => path.startsWith(`/git/${r}/`) || path.startsWith(`/git/${r.replace(/\.git$/, '')}/`));
      const answer = repo === undefined ? undefined : answers[repo];
      if (!answer) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('Not Found\n');
        return;
      }
      const service = /service=(git-[a-z-]+)/.exec(req.url ?? '')?.[1] ?? /\/(git-[a-z-]+)$/.exec(path)?.[1] ?? 'git-upload-pack';
      const kind = path.endsWith('/info/refs') ? 'advertisement' : 'result';
      res.writeHead(answer.status ?? 200, { 'content-type': `application/x-${service}-${kind}`, 'cache-control': 'no-cache', 'content-length': String(answer.body.length) });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { httpUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/git/`, seen };
}
