import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { BackendAuthRequiredError, BackendProtocolError, BackendUnavailableError } from '../errors.js';
import { parseAdvertisement, parseHttpServiceHeader, type RefAdvertisement } from '../protocol/advertisement.js';
import { advertisedHeadTarget, parseDiscovery, type Discovery } from '../protocol/discovery.js';
import { FetchResponseReader, encodeFetchRequest } from '../protocol/fetch.js';
import { encodeV0FetchRequest, V0FetchResponseReader } from '../protocol/fetch-v0.js';
import { encodeLsRefsRequest, parseLsRefsResponse, type LsRefsEntry, type LsRefsRequest } from '../protocol/ls-refs.js';
import { acknowledged, authAnswer, backendFault, isStaleConnection, movedBase, packOf, readPkts, readSections } from './http-read.js';
import { encodeHaveRequest } from '../protocol/acknowledgments.js';
import { encodeReceivePackRequest, type RefCommand } from '../protocol/receive-pack-request.js';
import { ReceivePackResponseReader, type ReportStatus } from '../protocol/report-status.js';
import type { BackendClient, LentCredentials, RefTip } from './types.js';
import { backendRepositoryName, repositoryUrlPath } from '../protocol/repository-name.js';
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
  /** Whether the backend answered the last discovery with v2 (undefined: not asked yet, or forgotten). */
  private speaksV2: boolean | undefined;
  /** Repository → its URL after the backend redirected a request for it. */
  private readonly moved = new Map<string, string>();

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

  async listRefs(repo: string, signal?: AbortSignal, lent?: LentCredentials): Promise<RefTip[] | null> {
    const found = await backendFault(this.id, () => this.refs(repo, { agent: AGENT, symrefs: true }, signal, lent));
    if (found === null) return null;
    if ('v0' in found) return found.v0.advertisement.refs.map((r) => ({ name: r.name, oid: r.oid }));
    return found.v2.map((e) => ({ name: e.name, oid: e.oid, ...(e.symrefTarget !== undefined && e.name !== 'HEAD' ? { symrefTarget: e.symrefTarget } : {}) }));
  }

  /** HEAD's symbolic target (ls-refs with `symrefs`; `githa verify`): null when the repository does not exist, undefined when HEAD is detached or unborn. */
  async headTarget(repo: string, signal?: AbortSignal): Promise<string | null | undefined> {
    const found = await backendFault(this.id, () => this.refs(repo, { agent: AGENT, symrefs: true, refPrefixes: ['HEAD'] }, signal));
    if (found === null) return null;
    if ('v0' in found) return advertisedHeadTarget(found.v0.advertisement);
    return found.v2.find((e) => e.name === 'HEAD')?.symrefTarget;
  }

  /**
   * The refs, by v2 ls-refs where the backend speaks v2, else from its v0
   * advertisement (docs/protocol.md "Backends as they are set up in the wild").
   * Whether it speaks v2 is learnt from a discovery GET, as git's own client
   * does, and remembered; a v2 request that fails otherwise than by the
   * connection forgets it, so a backend whose web server stopped passing
   * Git-Protocol on is asked again.
   */
  private async refs(
    repo: string,
    request: LsRefsRequest,
    signal?: AbortSignal,
    lent?: LentCredentials,
  ): Promise<{ v2: LsRefsEntry[] } | { v0: Discovery & { version: 0 | 1 } } | null> {
    const remembered = this.speaksV2;
    if (remembered !== true) {
      const d = await this.discover(repo, signal, lent);
      if (d === null) return null;
      if (d.version !== 2) return { v0: d };
    }
    try {
      const res = await this.send(repo, 'POST', 'git-upload-pack', encodeLsRefsRequest(request), 'upload-pack', signal, true, lent);
      if (!res) return null;
      const [pkts] = await readSections(res.body, this.id, 1);
      return { v2: parseLsRefsResponse(pkts ?? []) };
    } catch (err) {
      if (err instanceof BackendUnavailableError || err instanceof BackendAuthRequiredError) throw err;
      this.speaksV2 = undefined;
      if (remembered === true) return this.refs(repo, request, signal, lent);
      throw err;
    }
  }

  /** GET info/refs?service=git-upload-pack with `Git-Protocol: version=2`: which protocol the backend speaks, and its v0 advertisement. */
  private async discover(repo: string, signal?: AbortSignal, lent?: LentCredentials): Promise<Discovery | null> {
    const res = await this.send(repo, 'GET', 'info/refs?service=git-upload-pack', undefined, 'upload-pack', signal, true, lent);
    if (!res) return null;
    const pkts = await readPkts(res.body, this.id);
    let d: Discovery;
    try {
      d = parseDiscovery(pkts, 'git-upload-pack');
    } catch (err) {
      throw new BackendProtocolError(`backend ${this.id} sent a malformed ref advertisement for ${repo}: ${(err as Error).message}`, { cause: err });
    }
    this.speaksV2 = d.version === 2;
    return d;
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
    if (this.speaksV2 !== true) {
      const d = await this.discover(repo, signal);
      if (d === null) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
      if (d.version !== 2) {
        yield* this.fetchV0(repo, wants, haves, d.advertisement.capabilities, signal);
        return;
      }
    }
    const body = encodeFetchRequest({ wants: [...wants], haves: [...haves], done: true, ofsDelta: true, noProgress: true, agent: AGENT });
    const res = await this.send(repo, 'POST', 'git-upload-pack', body, 'upload-pack', signal, true);
    if (!res) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
    yield* packOf(res.body, new FetchResponseReader(), this.id);
  }

  async hasObjects(repo: string, tip: string, oids: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    if (oids.length === 0) return new Set();
    if (this.speaksV2 !== true) {
      const d = await this.discover(repo, signal);
      if (d === null) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
      if (d.version !== 2) return new Set(); // no v2 negotiation to ask with: "none" (see BackendClient.hasObjects)
    }
    const res = await this.send(repo, 'POST', 'git-upload-pack', encodeHaveRequest(tip, oids, { agent: AGENT }), 'upload-pack', signal, true);
    if (!res) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
    return backendFault(this.id, () => acknowledged(res.body, this.id));
  }

  /** A v0 fetch in one stateless POST (src/protocol/fetch-v0.ts) for a backend that ignores Git-Protocol. */
  private async *fetchV0(repo: string, wants: readonly string[], haves: readonly string[], offered: readonly string[], signal?: AbortSignal): AsyncGenerator<Buffer> {
    if (wants.length === 0) return;
    const body = encodeV0FetchRequest({ wants, haves, offered, agent: AGENT });
    const res = await this.send(repo, 'POST', 'git-upload-pack', body, 'upload-pack', signal, false);
    if (!res) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
    yield* packOf(res.body, new V0FetchResponseReader(), this.id);
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
    await this.probeChunked(signal);
  }

  /**
   * A POST whose body (a lone flush-pkt, an empty request) is chunked and
   * ends only after the headers have arrived: a web server that will not
   * take such bodies (lighttpd with server.stream-request-body = 1 or 2
   * answers 411) cannot receive the packs githa relays, so the backend is
   * reported down with that cause (docs/protocol.md "Backends as they are set up in the wild"). Any other answer
   * below 500 passes, as for the GET.
   */
  private async probeChunked(signal?: AbortSignal): Promise<void> {
    async function* body(): AsyncGenerator<Buffer> {
      yield Buffer.from('00');
      await delay(CHUNK_PROBE_GAP_MS, undefined, { signal });
      yield Buffer.from('00');
    }
    const url = `${this.opts.baseUrl}${PROBE_REPOSITORY}/git-upload-pack`;
    const headers = { ...this.headers, 'content-type': 'application/x-git-upload-pack-request' };
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: 'POST', headers, body: Readable.from(body()), dispatcher: this.agent, signal: signal ?? null });
    } catch (err) {
      const reason = !signal?.aborted ? (err as Error).message : (signal.reason as Error | undefined)?.name === 'TimeoutError' ? 'timed out' : 'aborted';
      throw new BackendUnavailableError(`backend ${this.id}: HTTP probe failed: ${reason}`, this.id, { cause: err });
    }
    await res.body.dump({ limit: 64 * 1024, signal: signal ?? undefined }).catch(() => undefined);
    if (res.statusCode === 411) throw new BackendUnavailableError(this.refusesChunked, this.id);
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
    lent?: LentCredentials,
  ): Promise<Dispatcher.ResponseData | null> {
    // `X`, not `X.git`: the backend's git finds X/.git, X or X.git (backendRepositoryName).
    const base = this.moved.get(repo) ?? `${this.opts.baseUrl}${repositoryUrlPath(backendRepositoryName(repo))}`;
    let url = `${base}/${path}`;
    const headers: Record<string, string> = { ...this.headers };
    // A client's credentials only where githa has none of its own for this backend (LentCredentials).
    if (!this.opts.auth && lent?.authorization) headers.authorization = lent.authorization;
    if (!this.opts.auth && lent?.cookie) headers.cookie = lent.cookie;
    if (v2) headers['git-protocol'] = 'version=2';
    if (method === 'POST') {
      headers['content-type'] = `application/x-git-${service}-request`;
      headers.accept = `application/x-git-${service}-result`;
    }
    let res: Dispatcher.ResponseData;
    for (let hop = 0; ; hop++) {
      res = await this.request(url, method, headers, body, signal);
      if (!REDIRECTS.has(res.statusCode)) break;
      await res.body.dump();
      url = this.redirectTarget(url, res, hop, body instanceof Readable, `${service} on ${repo}`);
      // Later requests for this repository go straight to where it moved (git's
      // own client rebases its URL on the redirect of its first request too).
      const base = movedBase(url, path);
      if (base !== undefined) this.remember(repo, base);
    }
    if (res.statusCode >= 400) this.moved.delete(repo);
    if (res.statusCode === 404) {
      await res.body.dump();
      this.moved.delete(repo);
      return null;
    }
    if ((res.statusCode === 401 || res.statusCode === 403) && !this.opts.auth) {
      // The backend's own authentication: its answer, for a passthrough front end to relay (BackendAuthRequiredError).
      const answer = await authAnswer(res);
      throw new BackendAuthRequiredError(`backend ${this.id} asks for credentials (HTTP ${res.statusCode}) for ${service} on ${repo}; githa has none for it (backends[].httpAuth)`, this.id, answer);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new BackendProtocolError(`backend ${this.id} refused githa's service credentials (HTTP ${res.statusCode}) for ${service} on ${repo}; check backends[].httpAuth`);
      }
      if (res.statusCode === 411) throw new BackendProtocolError(`${this.refusesChunked} (for ${service} on ${repo})`);
      const error = `backend ${this.id} answered HTTP ${res.statusCode} for ${service} on ${repo}`;
      if (res.statusCode >= 500) throw new BackendUnavailableError(error, this.id);
      throw new BackendProtocolError(error);
    }
    return res;
  }

  private async request(
    url: string,
    method: 'GET' | 'POST',
    headers: Record<string, string>,
    body: Buffer | Readable | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request(url, { method, headers, body, dispatcher: this.agent, signal: signal ?? null });
      } catch (err) {
        // A kept-alive connection the backend closed at the same moment: a
        // request with a replayable body is sent once more on a fresh one.
        if (attempt === 0 && !(body instanceof Readable) && isStaleConnection(err)) continue;
        throw new BackendUnavailableError(`backend ${this.id} is unreachable: ${(err as Error).message}`, this.id, { cause: err });
      }
    }
  }

  /**
   * Where a redirect leads (RFC 9110 15.4), for githa's own requests: only
   * within the backend's origin (its credentials go along), at most
   * MAX_REDIRECTS hops, and only for a request githa can send again (a
   * streamed pack cannot be). A POST stays a POST whatever the code: git's
   * RPCs have no GET form. The URL is not in the messages (see probe()).
   */
  private redirectTarget(url: string, res: Dispatcher.ResponseData, hop: number, streamed: boolean, what: string): string {
    const refused = (why: string): BackendProtocolError =>
      new BackendProtocolError(`backend ${this.id} redirected ${what} (HTTP ${res.statusCode}) ${why}; set its URL (backends[].http) to where it redirects`);
    const location = res.headers.location;
    if (typeof location !== 'string' || location === '') throw refused('without a Location');
    let next: URL;
    try {
      next = new URL(location, url);
    } catch (err) {
      throw refused(`to an invalid Location: ${(err as Error).message}`);
    }
    if (next.origin !== new URL(this.opts.baseUrl).origin) throw refused('to another origin, which githa does not follow');
    if (hop >= MAX_REDIRECTS) throw refused(`more than ${MAX_REDIRECTS} times`);
    if (streamed) throw refused('after githa had started streaming the request body');
    return next.href;
  }

  private remember(repo: string, base: string): void {
    this.moved.delete(repo);
    this.moved.set(repo, base);
    // Oldest first: a Map keeps insertion order.
    if (this.moved.size > MAX_MOVED) this.moved.delete(this.moved.keys().next().value as string);
  }

  private get refusesChunked(): string {
    return (
      `backend ${this.id} refuses chunked request bodies (HTTP 411 Length Required), and githa sends the packs it relays ` +
      `(catch-up, copies) chunked: let the web server buffer request bodies (lighttpd: server.stream-request-body = 0)`
    );
  }
}


/** What the HTTP probe asks for: a name no one uses, so the answer is a cheap 404 (or a tiny advertisement). */
const PROBE_REPOSITORY = 'githa-health-probe.git';

/** Redirect codes githa follows for its own requests (RFC 9110 15.4). */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** At most this many redirects for one request (curl's and browsers' limits are higher; a backend needs one). */
const MAX_REDIRECTS = 5;
/** Repositories whose moved location is remembered, per backend. */
const MAX_MOVED = 1024;
/** Between the two halves of the health check's chunked body: the server sees the headers before the body ends. */
const CHUNK_PROBE_GAP_MS = 50;

/** Idle keep-alive connections to a backend are closed after this long. */
const IDLE_SOCKET_MS = 4_000;


