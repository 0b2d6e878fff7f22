/**
 * The last step of a read over HTTP (docs/architecture.md "Reads over HTTP"):
 * the held first part of a backend's answer and the rest of it, relayed to
 * the client with backpressure (a pack is never held), every payload byte
 * watched for a failure the client sees (FailureWatch).
 *
 * An answer that came through githa's own HTTP client (src/frontends/http/wire.ts)
 * is passed on as it came on the wire, its chunked framing untouched: one
 * write per socket read (docs/architecture.md "The fetch answer's data path").
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { AnswerStream } from './backend-answer.js';
import type { ForwardedResponse, WireForward } from './forward.js';
import { type FailureWatch, HeldStream } from './held-answer.js';
import type { WireAnswer, WirePiece } from './wire.js';

/** A backend's answer to one attempt, however it was read: node's HTTP client through http-proxy, or githa's own (wire.ts). */
export interface Upstream {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The body decoded, to read whole (a refusal) or to drain. */
  body(): AnswerStream;
  /** The body held piece by piece for a check, then relayed (relayAnswer). */
  hold(onHold?: (bytes: number) => void): HeldStream | HeldWire;
  /** Stops the backend's request (the client went, the answer was dropped). */
  destroy(): void;
  /** Whether any byte of the request body was handed to the backend. */
  bodyStarted(): boolean;
}

export function proxyUpstream(fwd: ForwardedResponse): Upstream {
  return {
    statusCode: fwd.res.statusCode ?? 502,
    headers: fwd.res.headers,
    body: () => fwd.res,
    hold: (onHold) => new HeldStream(fwd.res, onHold),
    destroy: () => fwd.upstream.destroy(),
    bodyStarted: fwd.bodyStarted,
  };
}

export function wireUpstream(fwd: WireForward): Upstream {
  const a = fwd.answer;
  return {
    statusCode: a.statusCode,
    headers: a.headers,
    body: () => Object.assign(a.body(), { statusCode: a.statusCode, headers: a.headers }),
    hold: (onHold) => new HeldWire(a, onHold),
    destroy: () => a.destroy(),
    bodyStarted: fwd.bodyStarted,
  };
}

/** Relays the held part and the rest (relayHeld or relayWire); resolves with the payload bytes relayed. */
export function relayAnswer(req: IncomingMessage, res: ServerResponse, headers: Record<string, string | string[]>, held: HeldStream | HeldWire, watch: FailureWatch | undefined): Promise<number> {
  return held instanceof HeldWire ? relayWire(req, res, headers, held, watch) : relayHeld(res, headers, held, watch);
}

/** As HeldStream (src/frontends/http/held-answer.ts), over a WireAnswer: the payload is what is checked, the wire bytes are what is relayed. */
export class HeldWire {
  private raw: Buffer[] = [];
  private payload: Buffer[] = [];
  private length = 0;
  ended = false;

  /** @param onHold told of each piece before it is held; it may refuse (throw). */
  constructor(
    readonly wire: WireAnswer,
    private readonly onHold?: (bytes: number) => void,
  ) {}

  /** The payload read so far. */
  get bytes(): Buffer {
    if (this.payload.length > 1) this.payload = [Buffer.concat(this.payload)];
    return this.payload[0] ?? Buffer.alloc(0);
  }

  /** Reads until the answer ends, more than `cap` payload bytes are held, or `enough(held)` says so. */
  async fill(cap: number, enough?: (held: Buffer) => boolean): Promise<void> {
    while (!this.ended && this.length <= cap && !(enough?.(this.bytes) ?? false)) {
      const p = await this.wire.next();
      if (p === undefined) this.ended = true;
      else {
        this.onHold?.(p.raw.length);
        this.raw.push(p.raw);
        for (const c of p.payload) {
          this.payload.push(c);
          this.length += c.length;
        }
      }
    }
  }

  /** What was read so far, as one piece (then forgotten: the rest is relayed by wire.pump). */
  take(): WirePiece | undefined {
    if (this.raw.length === 0) return undefined;
    const piece = { raw: this.raw.length === 1 ? this.raw[0]! : Buffer.concat(this.raw), payload: this.length > 0 ? [this.bytes] : [] };
    this.raw = [];
    this.payload = [];
    return piece;
  }
}

/** Relays an answer read through node's HTTP client: node re-frames what it writes. Resolves with the payload bytes relayed. */
export async function relayHeld(res: ServerResponse, headers: Record<string, string | string[]>, held: HeldStream, watch: FailureWatch | undefined): Promise<number> {
  res.writeHead(200, headers);
  let bytes = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const c of held.all()) {
      bytes += c.length;
      watch?.write(c);
      yield c;
    }
  }
  await pipeline(counted(), res);
  return bytes;
}

/**
 * Relays an answer read by githa's own client. A chunked answer to an
 * HTTP/1.1 client goes out with its framing as the backend wrote it: the
 * response is told `Transfer-Encoding: chunked` and node's own chunking is
 * switched off (ServerResponse.chunkedEncoding), so node writes the bytes as
 * they are and adds no last chunk at the end (the backend's is in them); the
 * client's connection stays kept alive. A Content-Length answer's bytes are
 * its payload; a close-delimited one (or an HTTP/1.0 client) is written
 * payload only, framed by node. Resolves with the payload bytes relayed.
 */
export async function relayWire(req: IncomingMessage, res: ServerResponse, headers: Record<string, string | string[]>, held: HeldWire, watch: FailureWatch | undefined): Promise<number> {
  const framing = held.wire.framing;
  const http11 = req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
  const passed = framing === 'length' || (framing === 'chunked' && http11);
  const out = { ...headers };
  if (framing !== 'length') delete out['content-length'];
  if (framing === 'chunked' && http11) {
    res.writeHead(200, { ...out, 'transfer-encoding': 'chunked' });
    res.chunkedEncoding = false;
  } else res.writeHead(200, out);
  let bytes = 0;
  const each = (p: WirePiece): Buffer[] => {
    for (const c of p.payload) {
      bytes += c.length;
      watch?.write(c);
    }
    return passed ? [p.raw] : p.payload;
  };
  const first = held.take();
  if (first) for (const b of each(first)) res.write(b);
  await held.wire.pump(res, each);
  return bytes;
}
