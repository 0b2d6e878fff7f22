/** Reading a backend's small smart-HTTP answers whole (src/backends/http.ts). */
import { BackendProtocolError, PktLineError, ProtocolSyntaxError, RemoteFatalError, SidebandError } from '../errors.js';
import type { Dispatcher } from 'undici';
import { PktLineDecoder, errPktMessage, isErrPkt, type Pkt } from '../protocol/pkt-line.js';
import { AcknowledgmentsReader } from '../protocol/acknowledgments.js';

/** A kept-alive connection the backend closed as githa reused it. */
export function isStaleConnection(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}

/** Largest answer githa reads whole (ls-refs of a repository with very many refs). */
const MAX_SMALL_ANSWER = 64 * 1024 * 1024;

/** Reads a small answer to its end: every packet. */
export async function readPkts(body: AsyncIterable<unknown>, id: string): Promise<Pkt[]> {
  const decoder = new PktLineDecoder();
  const pkts: Pkt[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_SMALL_ANSWER) throw new BackendProtocolError(`backend ${id} sent an answer over ${MAX_SMALL_ANSWER} bytes`);
    decoder.write(chunk);
    for (let p = decoder.next(); p; p = decoder.next()) {
      throwIfErr(p, id);
      pkts.push(p);
    }
  }
  return pkts;
}

/**
 * Reads a small answer to its end (one `for await`, so the connection goes
 * back to the pool) and splits it into `count` flush-terminated sections.
 */
export async function readSections(body: AsyncIterable<unknown>, id: string, count: number): Promise<Pkt[][]> {
  const sections: Pkt[][] = [[]];
  for (const p of await readPkts(body, id)) {
    if (sections.length > count) break;
    if (p.type === 'flush') sections.push([]);
    else sections[sections.length - 1]!.push(p);
  }
  if (sections.length <= count) throw new BackendProtocolError(`backend ${id} ended its answer before a flush-pkt`);
  return sections.slice(0, count);
}

/** "ERR" may stand wherever a pkt-line is expected (gitprotocol-pack): the backend's own reason, for the client. */
function throwIfErr(p: Pkt, id: string): void {
  if (p.type === 'data' && isErrPkt(p.payload)) throw new RemoteFatalError(errPktMessage(p.payload), { backendId: id });
}

/**
 * Runs a parse of a backend's answer: malformed bytes there are the backend's
 * fault (502), never the client's (PktLineError and ProtocolSyntaxError alone
 * map to 400: they describe a client's request; src/frontends/error-map.ts).
 */
export async function backendFault<T>(id: string, parse: () => Promise<T>): Promise<T> {
  try {
    return await parse();
  } catch (err) {
    if (err instanceof PktLineError || err instanceof ProtocolSyntaxError || err instanceof SidebandError) {
      throw new BackendProtocolError(`backend ${id} sent a malformed answer: ${err.message}`, { cause: err });
    }
    if (err instanceof RemoteFatalError && err.backendId === undefined) throw new RemoteFatalError(err.message, { backendId: id, cause: err });
    throw err;
  }
}

/** Largest body of a backend's 401/403 that githa keeps for the client (an error page; a longer one is replaced by a line of text). */
const MAX_AUTH_BODY = 16 * 1024;

/** A backend's 401/403 to githa's own request: status, the headers git needs to prompt or explain (RFC 9110 11.6.1), and a short body. */
export async function authAnswer(res: Dispatcher.ResponseData): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
  const headers: Record<string, string | string[]> = {};
  for (const k of ['www-authenticate', 'content-type', 'cache-control']) {
    const v = res.headers[k];
    if (v !== undefined) headers[k] = v;
  }
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body) {
    const c = chunk as Buffer;
    parts.push(c);
    n += c.length;
    // Past the cap the body is not relayed anyway: stop reading (a slow or endless body must not hold the request).
    if (n > MAX_AUTH_BODY) {
      res.body.destroy();
      break;
    }
  }
  let body = Buffer.concat(parts);
  if (n > MAX_AUTH_BODY) {
    body = Buffer.from(`backend answered HTTP ${res.statusCode}\n`);
    headers['content-type'] = 'text/plain; charset=utf-8';
  }
  return { status: res.statusCode, headers, body };
}

/**
 * The repository's new base when a redirect kept the request's own path and
 * query (`…/<new base>/info/refs?service=…`); undefined for anything else (a
 * login page that names the old URL in its query is no new home).
 */
export function movedBase(target: string, path: string): string | undefined {
  const to = new URL(target);
  const asked = new URL(path, 'http://githa.invalid/');
  if (to.search !== asked.search || !to.pathname.endsWith(asked.pathname) || to.pathname === asked.pathname) return undefined;
  return `${to.origin}${to.pathname.slice(0, -asked.pathname.length)}`;
}

/** What fetchPack needs of a fetch answer's reader (v2 FetchResponseReader, v0 V0FetchResponseReader). */
export interface FetchAnswerReader {
  write(chunk: Buffer): void;
  next(): { type: string; data?: Buffer } | undefined | null;
}

/** The pack data of a fetch answer, as its reader (v2 or v0) finds it in the side-band stream. */
export async function* packOf(body: AsyncIterable<unknown>, reader: FetchAnswerReader, id: string): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    reader.write(chunk as Buffer);
    for (let ev = reader.next(); ev; ev = reader.next()) {
      if (ev.type === 'pack' && ev.data) yield ev.data;
      else if (ev.type === 'end') return;
    }
  }
  throw new BackendProtocolError(`backend ${id} ended the fetch response early`);
}

/** The ids a have-only fetch answer acknowledged (src/protocol/acknowledgments.ts); the body is closed once they are known, before any pack. */
export async function acknowledged(body: AsyncIterable<unknown> & { destroy(): unknown }, id: string): Promise<Set<string>> {
  const reader = new AcknowledgmentsReader();
  for await (const chunk of body) {
    reader.write(chunk as Buffer);
    const got = reader.result();
    if (got) {
      body.destroy();
      return got.acked;
    }
  }
  throw new BackendProtocolError(`backend ${id} ended its acknowledgments early`);
}
