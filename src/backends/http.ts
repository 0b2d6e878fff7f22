import { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { BackendProtocolError, BackendUnavailableError, PktLineError, ProtocolSyntaxError, RemoteFatalError, SidebandError } from '../errors.js';
import { parseAdvertisement, parseHttpServiceHeader, type RefAdvertisement } from '../protocol/advertisement.js';
import { FetchResponseReader, encodeFetchRequest } from '../protocol/fetch.js';
import { encodeLsRefsRequest, parseLsRefsResponse } from '../protocol/ls-refs.js';
import { PktLineDecoder, errPktMessage, isErrPkt, type Pkt } from '../protocol/pkt-line.js';
import { encodeReceivePackRequest, type RefCommand } from '../protocol/receive-pack-request.js';
import { ReceivePackResponseReader, type ReportStatus } from '../protocol/report-status.js';
import type { BackendClient, RefTip } from './types.js';
import { repositoryUrlPath } from '../protocol/repository-name.js';
import { AGENT } from '../version.js';


export interface HttpBackendOptions {
  id: string;
  /** Base URL with a trailing slash: <base><repo>/info/refs is the smart endpoint. */
  baseUrl: string;
  auth?: { username: string; password: string } | undefined;
  timeoutMs: number;
}

/**
 * githa's own smart-HTTP client of one backend (gitprotocol-http), on a pooled
 * keep-alive undici Agent. Bodies stream both ways; nothing is buffered beyond
 * one pkt-line.
 */
export class HttpBackendClient implements BackendClient {
  readonly id: string;
  private readonly agent: Agent;
  private readonly headers: Record<string, string>;

  constructor(private readonly opts: HttpBackendOptions) {
    this.id = opts.id;
    this.agent = new Agent({
      // Shorter than the common server idle limits (lighttpd and Apache: 5 s), so
      // githa rarely reuses a connection the backend is closing.
      keepAliveTimeout: IDLE_SOCKET_MS,
      keepAliveMaxTimeout: IDLE_SOCKET_MS,
      connectTimeout: Math.min(opts.timeoutMs, 10_000),
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
    this.headers = { 'user-agent': `git/2.39 (${AGENT})` };
    if (opts.auth) {
      this.headers.authorization = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`;
    }
  }

  async listRefs(repo: string, signal?: AbortSignal): Promise<RefTip[] | null> {
    const body = encodeLsRefsRequest({ agent: AGENT });
    const res = await this.send(repo, 'POST', 'git-upload-pack', body, 'upload-pack', signal, true);
    if (!res) return null;
    return backendFault(this.id, async () => {
      const [pkts] = await readSections(res.body, this.id, 1);
      return parseLsRefsResponse(pkts ?? []).map((e) => ({ name: e.name, oid: e.oid }));
    });
  }

  /** HEAD's symbolic target (ls-refs with `symrefs`; `githa verify`): null when the repository does not exist, undefined when HEAD is detached or unborn. */
  async headTarget(repo: string, signal?: AbortSignal): Promise<string | null | undefined> {
    const body = encodeLsRefsRequest({ agent: AGENT, symrefs: true, refPrefixes: ['HEAD'] });
    const res = await this.send(repo, 'POST', 'git-upload-pack', body, 'upload-pack', signal, true);
    if (!res) return null;
    return backendFault(this.id, async () => {
      const [pkts] = await readSections(res.body, this.id, 1);
      return parseLsRefsResponse(pkts ?? []).find((e) => e.name === 'HEAD')?.symrefTarget;
    });
  }

  async receivePackAdvertisement(repo: string, signal?: AbortSignal): Promise<RefAdvertisement | null> {
    const res = await this.send(repo, 'GET', 'info/refs?service=git-receive-pack', undefined, 'receive-pack', signal, false);
    if (!res) return null;
    return backendFault(this.id, async () => {
      const [header = [], pkts = []] = await readSections(res.body, this.id, 2);
      parseHttpServiceHeader(header);
      return parseAdvertisement(pkts);
    });
  }

  async *fetchPack(repo: string, wants: readonly string[], haves: readonly string[], signal?: AbortSignal): AsyncIterable<Buffer> {
    const body = encodeFetchRequest({ wants: [...wants], haves: [...haves], done: true, ofsDelta: true, noProgress: true, agent: AGENT });
    const res = await this.send(repo, 'POST', 'git-upload-pack', body, 'upload-pack', signal, true);
    if (!res) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
    const reader = new FetchResponseReader();
    for await (const chunk of res.body) {
      reader.write(chunk as Buffer);
      for (let ev = reader.next(); ev; ev = reader.next()) {
        if (ev.type === 'pack') yield ev.data;
        else if (ev.type === 'end') return;
      }
    }
    throw new BackendProtocolError(`backend ${this.id} ended the fetch response early`);
  }

  async pushPack(
    repo: string,
    commands: readonly RefCommand[],
    capabilities: readonly string[],
    pack: AsyncIterable<Buffer> | null,
    signal?: AbortSignal,
  ): Promise<ReportStatus> {
    const head = encodeReceivePackRequest([...commands], [...capabilities]);
    async function* body(): AsyncGenerator<Buffer> {
      yield head;
      if (pack) yield* pack;
    }
    const res = await this.send(repo, 'POST', 'git-receive-pack', Readable.from(body(), { objectMode: false }), 'receive-pack', signal, false);
    if (!res) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
    const sideband = capabilities.some((c) => c === 'side-band-64k' || c === 'side-band');
    const reader = new ReceivePackResponseReader(sideband);
    let report: ReportStatus | undefined;
    for await (const chunk of res.body) {
      reader.write(chunk as Buffer);
      for (let ev = reader.next(); ev; ev = reader.next()) {
        if (ev.type === 'report') report = ev.report;
        else if (ev.type === 'fatal') throw new BackendProtocolError(`backend ${this.id} refused the push: ${ev.message}`);
      }
    }
    if (!report) throw new BackendProtocolError(`backend ${this.id} sent no report-status`);
    return report;
  }

  /**
   * The ref advertisement of a repository that need not exist: any answer
   * below 500 (404 included) shows the web server and git http-backend are
   * alive; 5xx, a refused connection or a timeout is a failure. Sent with the
   * service credentials, so a backend behind authentication answers 404/401
   * rather than a 5xx (docs/config.md `health.*`).
   */
  async probe(signal?: AbortSignal): Promise<void> {
    const url = `${this.opts.baseUrl}${PROBE_REPOSITORY}/info/refs?service=git-upload-pack`;
    let res: Dispatcher.ResponseData;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await request(url, { method: 'GET', headers: this.headers, dispatcher: this.agent, signal: signal ?? null });
        break;
      } catch (err) {
        if (attempt === 0 && isStaleConnection(err) && !signal?.aborted) continue;
        // The URL is not in the message: it may carry a path operators consider internal; the id names the backend.
        const reason = !signal?.aborted ? (err as Error).message : (signal.reason as Error | undefined)?.name === 'TimeoutError' ? 'timed out' : 'aborted';
        throw new BackendUnavailableError(`backend ${this.id}: HTTP probe failed: ${reason}`, this.id, { cause: err });
      }
    }
    // dump() discards a small body so the connection goes back to the pool (a larger one
    // closes it). The probe judges the status code; a body that fails to drain only costs
    // that connection, so its error is ignored.
    await res.body.dump({ limit: 64 * 1024, signal: signal ?? undefined }).catch(() => undefined);
    if (res.statusCode >= 500) throw new BackendUnavailableError(`backend ${this.id}: HTTP probe answered ${res.statusCode}`, this.id);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** One smart-HTTP request; null on 404 (no such repository on this backend). */
  private async send(
    repo: string,
    method: 'GET' | 'POST',
    path: string,
    body: Buffer | Readable | undefined,
    service: 'upload-pack' | 'receive-pack',
    signal: AbortSignal | undefined,
    v2: boolean,
  ): Promise<Dispatcher.ResponseData | null> {
    const url = `${this.opts.baseUrl}${repositoryUrlPath(repo)}/${path}`;
    const headers: Record<string, string> = { ...this.headers };
    if (v2) headers['git-protocol'] = 'version=2';
    if (method === 'POST') {
      headers['content-type'] = `application/x-git-${service}-request`;
      headers.accept = `application/x-git-${service}-result`;
    }
    let res: Dispatcher.ResponseData;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await request(url, { method, headers, body, dispatcher: this.agent, signal: signal ?? null });
        break;
      } catch (err) {
        // A kept-alive connection the backend closed at the same moment: a
        // request with a replayable body is sent once more on a fresh one.
        if (attempt === 0 && !(body instanceof Readable) && isStaleConnection(err)) continue;
        throw new BackendUnavailableError(`backend ${this.id} is unreachable: ${(err as Error).message}`, this.id, { cause: err });
      }
    }
    if (res.statusCode === 404) {
      await res.body.dump();
      return null;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      const error = `backend ${this.id} answered HTTP ${res.statusCode} for ${service} on ${repo}`;
      if (res.statusCode >= 500) throw new BackendUnavailableError(error, this.id);
      throw new BackendProtocolError(error);
    }
    return res;
  }
}


/** What the HTTP probe asks for: a name no one uses, so the answer is a cheap 404 (or a tiny advertisement). */
const PROBE_REPOSITORY = 'githa-health-probe.git';

/** Idle keep-alive connections to a backend are closed after this long. */
const IDLE_SOCKET_MS = 4_000;

function isStaleConnection(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}

/** Largest answer githa reads whole (ls-refs of a repository with very many refs). */
const MAX_SMALL_ANSWER = 64 * 1024 * 1024;

/**
 * Reads a small answer to its end (one `for await`, so the connection goes
 * back to the pool) and splits it into `count` flush-terminated sections.
 */
async function readSections(body: AsyncIterable<unknown>, id: string, count: number): Promise<Pkt[][]> {
  const decoder = new PktLineDecoder();
  const sections: Pkt[][] = [[]];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_SMALL_ANSWER) throw new BackendProtocolError(`backend ${id} sent an answer over ${MAX_SMALL_ANSWER} bytes`);
    decoder.write(chunk);
    for (let p = decoder.next(); p; p = decoder.next()) {
      // "ERR" may stand wherever a pkt-line is expected (gitprotocol-pack): the backend's own reason, for the client.
      if (p.type === 'data' && isErrPkt(p.payload)) throw new RemoteFatalError(errPktMessage(p.payload), { backendId: id });
      if (sections.length > count) continue;
      if (p.type === 'flush') sections.push([]);
      else sections[sections.length - 1]!.push(p);
    }
  }
  if (sections.length <= count) throw new BackendProtocolError(`backend ${id} ended its answer before a flush-pkt`);
  return sections.slice(0, count);
}

/**
 * Runs a parse of a backend's answer: malformed bytes there are the backend's
 * fault (502), never the client's (PktLineError and ProtocolSyntaxError alone
 * map to 400: they describe a client's request; src/frontends/error-map.ts).
 */
async function backendFault<T>(id: string, parse: () => Promise<T>): Promise<T> {
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
