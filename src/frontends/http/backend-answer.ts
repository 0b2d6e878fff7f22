import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

/** A backend's answer body with its head: node's IncomingMessage, or one read by githa's own client (src/frontends/http/wire.ts). */
export type AnswerStream = Readable & { statusCode?: number | undefined; headers: IncomingHttpHeaders };

/** Largest body of a backend's non-200 answer that githa relays (an error page; anything longer is cut and replaced). */
const MAX_RELAYED_BODY = 64 * 1024;

/** Response headers of a backend's refusal (401, 403, …) that the client sees: what git needs to prompt or explain. */
const RELAYED_HEADERS = ['content-type', 'cache-control', 'expires', 'pragma', 'content-encoding', 'www-authenticate'];

/** A backend's whole non-200 answer, read so it can be relayed as one message whose length matches its body. */
export interface BackendAnswer {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/**
 * Reads a backend's refusal (docs/protocol.md "Differences from a stock
 * backend"): its status, the headers the client needs (the challenge of a 401,
 * RFC 9110 11.6.1), its Set-Cookie where cookies are relayed (passthrough,
 * docs/security.md "Cookies") and its body, capped. The length header is githa's own,
 * computed from the bytes relayed: a copied `content-length` next to a body
 * githa changed leaves git waiting for bytes that never come.
 */
export async function readBackendAnswer(res: AnswerStream, fallback: string, opts: { cookies: boolean }): Promise<BackendAnswer> {
  const headers: Record<string, string | string[]> = {};
  for (const k of opts.cookies ? [...RELAYED_HEADERS, 'set-cookie'] : RELAYED_HEADERS) {
    const v = res.headers[k];
    if (v !== undefined) headers[k] = v;
  }
  let body = await readCapped(res, MAX_RELAYED_BODY + 1);
  if (body.length > MAX_RELAYED_BODY) {
    // Cut: the rest of an encoded body would be garbage; say so in plain text instead.
    body = Buffer.from(fallback);
    delete headers['content-encoding'];
    headers['content-type'] = 'text/plain; charset=utf-8';
  }
  return { status: res.statusCode ?? 502, headers, body };
}

/** Sends a backend's answer read by readBackendAnswer, with a `content-length` that matches its body. */
export function sendBackendAnswer(res: ServerResponse, answer: BackendAnswer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.length) });
  res.end(answer.body);
}

/** Reads a stream to its end, keeping at most `cap` bytes (the rest is drained so the connection can be reused). */
export async function readCapped(stream: Readable, cap: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    const c = chunk as Buffer;
    parts.push(c.subarray(0, cap - n));
    n += c.length;
    // At the cap the rest is not relayed: stop reading (a slow or endless body must not hold the request).
    if (n >= cap) {
      stream.destroy();
      break;
    }
  }
  return Buffer.concat(parts);
}
