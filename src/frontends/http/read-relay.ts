import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Cluster, ReadRoute } from '../../cluster/cluster.js';
import type { LiveCopy, ReadVerdict } from '../../cluster/read-check.js';
import type { Config } from '../../config/schema.js';
import { BackendProtocolError, BackendUnavailableError, NoLeaderError, RemoteFatalError, RepositoryNotFoundError } from '../../errors.js';
import { widenLsRefs, type WidenedLsRefs } from '../../protocol/ls-refs-widen.js';
import { decodeAll, type Pkt, PktFramingCheck, pktText } from '../../protocol/pkt-line.js';
import type { HttpGitRequest } from '../../protocol/request.js';
import { backendRepositoryName, repositoryUrlPath } from '../../protocol/repository-name.js';
import type { HttpAuth, HttpCaller } from './auth.js';
import { readBackendAnswer, sendBackendAnswer } from './backend-answer.js';
import { FailureWatch, HeldStream, discoveryListing, firstPktComplete, firstPktError, lsRefsListing } from './held-answer.js';
import { Forwarder } from './forward.js';
import type { HeaderEditor } from './headers.js';
import { type HeldWire, type Upstream, proxyUpstream, relayAnswer, wireUpstream } from './wire-relay.js';
import { inflateCapped, isGzip } from './limits.js';
import type { RequestBudget } from '../held-bytes.js';

/** Response headers of a backend that the client sees (the rest describe the backend's hop; Set-Cookie: see HttpAuth.relaysCookies). */
const PASSED_RESPONSE_HEADERS = ['content-type', 'cache-control', 'expires', 'pragma', 'content-encoding', 'www-authenticate', 'content-length'];
const WITH_COOKIES = [...PASSED_RESPONSE_HEADERS, 'set-cookie'];

/** An upload-pack answer's first packet is looked at up to this size (its longest legal pkt-line). */
const PEEK_BYTES = 65520;

/** The request body as sent to each candidate: held (replayable), streamed (one backend only), or none (GET). */
export type Body = { kind: 'none' } | { kind: 'held'; bytes: Buffer; inflated: boolean } | { kind: 'stream'; stream: Readable; error: () => Error | undefined; inflated: boolean };

/** Between rounds that only waited for a landing write (catchUp.readWaitMs bounds them all). */
const LANDING_POLL_MS = 50;

/** One candidate's result: the request is answered, or the next candidate is tried (`rejected`: the check dropped its answer). */
type Attempt = { kind: 'done'; fields: Record<string, unknown> } | { kind: 'next'; error: Error; rejected?: string; landing?: boolean };

interface Read {
  req: IncomingMessage;
  res: ServerResponse;
  git: HttpGitRequest;
  caller: HttpCaller;
  log: Logger;
  path: string;
  body: Body;
  /** Set for a v2 `command=ls-refs` request: sent without its ref-prefix arguments, answered with the selected lines. */
  lsRefs: WidenedLsRefs | undefined;
  budget: RequestBudget | undefined;
}

/**
 * Relays a read (advertisement, ls-refs, fetch) from the first candidate
 * whose answer agrees with the record (docs/architecture.md "Verified copies",
 * "Reads over HTTP"): listings are held and checked before the client gets a
 * byte; an upload-pack answer's first packet is looked at; a failed or
 * contradicting answer is dropped and the next candidate gets the same request.
 */
export class ReadRelay {
  constructor(
    private readonly d: { config: Config; cluster: Cluster; forwarder: Forwarder; auth: HttpAuth },
  ) {}

  /** `body`: from requestBody, read before the request was routed (an RPC), or none (a GET); `budget`: the request's held bytes (src/frontends/held-bytes.ts). */
  async relay(
    req: IncomingMessage,
    res: ServerResponse,
    git: HttpGitRequest,
    first: ReadRoute,
    caller: HttpCaller,
    log: Logger,
    reroute: () => Promise<ReadRoute>,
    body: Body,
    budget?: RequestBudget,
  ): Promise<Record<string, unknown>> {
    // `X`, not `X.git`: the backend's git finds X/.git, X or X.git (backendRepositoryName).
    const at = repositoryUrlPath(backendRepositoryName(git.repo));
    const path = git.kind === 'advertisement' ? `${at}/info/refs?service=${git.service}` : `${at}/${git.service}`;
    const lsRefs = body.kind === 'held' && git.service === 'git-upload-pack' ? widenedLsRefs(body.bytes) : undefined;
    const read: Read = { req, res, git, caller, log, path, body, lsRefs, budget };
    // Built only when every candidate failed: a read that succeeds allocates no error.
    let lastError: Error | undefined;
    const rejected: string[] = [];
    let failedOnly = true;
    let route = first;
    // Pushes landing one after another on the only leaders (not acknowledged yet, so not served) are waited out as the
    // route waits for one (catchUp.readWaitMs), rather than refused after two rounds.
    const until = performance.now() + this.d.config.catchUp.readWaitMs;
    let landingOnly = false;
    // Answers dropped in the last round: each one moved the record on (a landing write, a copy marked drifted or found
    // behind), so the next route differs; a round that dropped none has nothing new to try.
    let droppedInRound = 0;
    // A second route only after an answer was dropped: the record moved, or a copy stopped leading. Past it, routes go on
    // while answers are dropped (landing writes, copies marked drifted one after another: the route then waits for a
    // repaired copy, src/cluster/read-wait.ts), bounded by catchUp.readWaitMs.
    for (let round = 0; round < 2 || ((landingOnly || droppedInRound > 0) && performance.now() < until); round++) {
      if (round >= 1) {
        // Every leader failed alike (a want no copy has): the check moved no copy, so a second round would only ask them all again.
        // Every leader refused the connection (none answered): one more route, which waits for a push in flight on
        // the others (Cluster.routeRead) now that the failed ones are down.
        const unreachableOnly = rejected.length === 0 && lastError instanceof BackendUnavailableError && round === 1;
        if ((rejected.length === 0 && !unreachableOnly) || failedOnly || body.kind === 'stream') break;
        // Past the second round: paced, so a marker that stays (an interrupted write, until it is resolved) costs a
        // listing per LANDING_POLL_MS, not a busy loop.
        if (round >= 2) await sleep(LANDING_POLL_MS);
        route = await reroute();
      }
      landingOnly = true;
      droppedInRound = 0;
      for (const backend of route.candidates) {
        if (!backend.http) continue;
        const a = await this.attempt(read, route, backend.id, backend.http);
        if (a.kind === 'done') return lsRefs ? { ...a.fields, command: 'ls-refs' } : a.fields;
        lastError = a.error;
        if (!a.landing) landingOnly = false;
        if (a.rejected !== undefined) {
          droppedInRound++;
          if (!rejected.includes(`${backend.id}: ${a.rejected}`)) rejected.push(`${backend.id}: ${a.rejected}`);
        }
        else log.warn({ repo: git.repo, backend: backend.id, err: a.error.message }, 'read attempt failed; trying the next leader');
        if (!(a.error instanceof RemoteFatalError)) failedOnly = false;
      }
    }
    // Every leader's upload-pack failed alike (an ERR such as "not our ref" for a want no copy has): the client gets that error.
    if (failedOnly && lastError instanceof RemoteFatalError) throw lastError;
    if (rejected.length > 0 && landingOnly) {
      throw new NoLeaderError(`every leader of ${git.repo} that could serve this read is taking a push that is not recorded yet; try again`);
    }
    if (rejected.length > 0) {
      throw new NoLeaderError(`no leader of ${git.repo} answered with its recorded refs (${rejected.join('; ')}); the copies are being repaired; try again`);
    }
    // Every leader refused the connection: name them and the way out (docs/operations.md "No reachable leader").
    throw lastError === undefined || lastError instanceof BackendUnavailableError ? this.d.cluster.unreachable(route) : lastError;
  }

  /**
   * The body of an upload-pack POST, inflated (http.maxInflatedBytes caps a
   * gzip bomb) and held up to read.maxReplayBodyBytes (and the request's
   * memory budget) so that it can be sent to another candidate; a longer one
   * streams to one backend. Read before the request is routed: its pkt-line
   * framing is checked before a byte goes to a backend (docs/security.md
   * "Hostile input and limits"), a held body whole (PktLineError, 400,
   * nothing touched), a streamed one packet by packet (the backend's request
   * is cut at the first broken header).
   */
  async requestBody(req: IncomingMessage, budget?: RequestBudget): Promise<Body> {
    const inflated = isGzip(req) ? inflateCapped(req, this.d.config.http.maxInflatedBytes) : undefined;
    const framing = new PktFramingCheck();
    let framingError: Error | undefined;
    const error = (): Error | undefined => inflated?.error() ?? framingError;
    const cap = Math.min(this.d.config.read.maxReplayBodyBytes, budget?.room() ?? Infinity);
    const held = new HeldStream(inflated?.body ?? req, budget && ((n) => budget.hold(n)));
    try {
      if (cap > 0) await held.fill(cap);
    } catch (err) {
      throw error() ?? err;
    }
    const prefix = held.bytes;
    framing.write(prefix);
    if (held.ended) {
      framing.end();
      return { kind: 'held', bytes: prefix, inflated: inflated !== undefined };
    }
    async function* checked(): AsyncGenerator<Buffer> {
      let skip = prefix.length > 0; // held.all() yields the checked prefix first
      for await (const c of held.all()) {
        try {
          if (!skip) framing.write(c);
          skip = false;
        } catch (err) {
          framingError = err as Error;
          throw err;
        }
        yield c;
      }
      try {
        framing.end();
      } catch (err) {
        framingError = err as Error;
        throw err;
      }
    }
    const stream = Readable.from(checked());
    // Its failure (a broken pkt-line, the client gone) reaches the caller through error() and the
    // forwarder (which watches the body's 'close'): an 'error' event nobody listens to would end the process.
    stream.on('error', () => {});
    return { kind: 'stream', stream, error, inflated: inflated !== undefined };
  }

  private async attempt(r: Read, route: ReadRoute, id: string, baseUrl: string): Promise<Attempt> {
    const { cluster, forwarder, auth } = this.d;
    const { body } = r;
    const replayable = body.kind !== 'stream';
    const sent = r.lsRefs?.request ?? (body.kind === 'held' ? body.bytes : undefined);
    let up: Upstream;
    try {
      const authHeaders = auth.backendHeaders(r.caller, id);
      const editHeaders = (p: HeaderEditor): void => {
        editBodyHeaders(p, body, sent);
        authHeaders(p);
      };
      // An upload-pack POST with a held body (the fetch, whose answer is the pack) goes through githa's own client, whose
      // answer is relayed with its chunked framing untouched (docs/architecture.md "The fetch answer's data path").
      up =
        r.git.kind === 'rpc' && r.lsRefs === undefined && sent !== undefined && Forwarder.wireable(baseUrl)
          ? wireUpstream(await forwarder.sendWire(r.req, { baseUrl, backendId: id, path: r.path, body: sent, editHeaders }))
          : proxyUpstream(
              await forwarder.send(r.req, r.res, {
                baseUrl,
                backendId: id,
                path: r.path,
                body: sent !== undefined ? Readable.from([sent]) : body.kind === 'stream' ? body.stream : undefined,
                editHeaders,
              }),
            );
    } catch (err) {
      // The body failed (too large inflated, not gzip): the client's fault, whatever the backend saw.
      const bodyError = body.kind === 'stream' ? body.error() : undefined;
      if (bodyError) throw bodyError;
      if (err instanceof BackendUnavailableError && (!err.bytesSent || (replayable && !r.res.destroyed))) {
        if (!err.bytesSent) cluster.health.markDown(id);
        return { kind: 'next', error: err };
      }
      throw err;
    }
    const status = up.statusCode;
    const bodyError = body.kind === 'stream' ? body.error() : undefined;
    if (bodyError) {
      up.body().resume();
      throw bodyError;
    }
    // The client may go while its answer is held or relayed: the backend's request goes too.
    const cut = (): void => {
      if (!r.res.writableFinished) up.destroy();
    };
    r.res.on('close', cut);
    try {
      if (status !== 200) return await this.refused(r, route, id, status, up);
      cluster.health.markUp(id);
      return await this.answered(r, route, id, up);
    } catch (err) {
      // Refused mid-answer (a memory budget) or cut: the backend's request goes too.
      up.destroy();
      throw err;
    } finally {
      r.res.off('close', cut);
    }
  }

  /** A non-200 answer: relayed (passthrough authentication), checked (404: the copy is missing; a failed POST), or the next candidate. */
  private async refused(r: Read, route: ReadRoute, id: string, status: number, up: Upstream): Promise<Attempt> {
    const { cluster, auth } = this.d;
    if ((status === 401 || status === 403) && auth.mode !== 'githa') {
      // The backend's own authentication decides (passthrough): relay its answer whole,
      // challenge and body, with a length that matches the bytes sent.
      sendBackendAnswer(r.res, await readBackendAnswer(up.body(), `githa: backend refused: HTTP ${status}\n`, { cookies: auth.relaysCookies }));
      return { kind: 'done', fields: { backend: id, outcome: `backend-${status}`, bytes: 0 } };
    }
    up.body().resume();
    if (status === 401 || status === 403) {
      // githa authenticated the client: a backend refusing githa's service credentials is a backend fault, never the client's challenge.
      return { kind: 'next', error: new BackendProtocolError(`backend ${id} refused githa's service credentials (HTTP ${status}); check backends[].httpAuth`) };
    }
    const replayable = r.body.kind !== 'stream';
    if (status === 404) {
      const error = new RepositoryNotFoundError(`repository ${r.git.repo} not found on ${id}`);
      if (!replayable && up.bodyStarted()) throw error;
      // Passthrough: the backend judged the client's own credentials, and a 404 may be its "no access" (hosting
      // products hide a private repository so): it says nothing of the copy, or any client could mark every copy missing.
      if (auth.mode !== 'githa' && (r.req.headers.authorization !== undefined || r.req.headers.cookie !== undefined)) return { kind: 'next', error };
      return this.dropped(r, route, id, { kind: 'missing', detail: 'HTTP 404' }, error);
    }
    const error = new BackendProtocolError(`backend ${id} answered HTTP ${status}`);
    if (!replayable && up.bodyStarted()) throw error;
    if (status >= 500) cluster.health.markDown(id);
    if (r.git.kind === 'rpc' && status >= 500) return this.dropped(r, route, id, { kind: 'failed', detail: `HTTP ${status}` }, error);
    return { kind: 'next', error };
  }

  /** A 200 answer: a listing is held and checked; an upload-pack answer's first packet is looked at; then it is relayed. */
  private async answered(r: Read, route: ReadRoute, id: string, answer: Upstream): Promise<Attempt> {
    const { config } = this.d;
    const headers = pick(answer.headers, this.d.auth.relaysCookies ? WITH_COOKIES : PASSED_RESPONSE_HEADERS);
    const held = answer.hold(r.budget && ((n) => r.budget?.hold(n)));
    const listing = r.git.kind === 'advertisement' || r.lsRefs !== undefined;
    if (answer.headers['content-encoding'] !== undefined && answer.headers['content-encoding'] !== 'identity') {
      if (listing) r.log.warn({ repo: r.git.repo, backend: id, encoding: answer.headers['content-encoding'] }, 'an encoded listing is relayed unchecked');
      return this.relayed(r, route, id, headers, held);
    }
    if (!listing) {
      await held.fill(PEEK_BYTES, firstPktComplete);
      const err = firstPktError(held.bytes);
      const empty = held.ended && held.bytes.length === 0;
      if ((err !== undefined || empty) && r.body.kind !== 'stream') {
        answer.destroy();
        const detail = err !== undefined ? `ERR ${err}` : 'an empty answer';
        const error = err !== undefined ? new RemoteFatalError(err, { backendId: id }) : new BackendProtocolError(`backend ${id} answered ${detail}`);
        return this.dropped(r, route, id, { kind: 'failed', detail }, error);
      }
      return this.relayed(r, route, id, headers, held);
    }
    // The request's memory budget bounds it too (src/frontends/held-bytes.ts): past either, it streams unchecked.
    const cap = Math.min(config.read.maxHeldListingBytes, r.budget?.room() ?? Infinity);
    await held.fill(cap);
    if (!held.ended) {
      r.log.warn({ repo: r.git.repo, backend: id, cap }, 'a listing over read.maxHeldListingBytes (or memory.maxHeldBytesPerRequest) is relayed unchecked');
      return this.relayed(r, route, id, headers, held);
    }
    const seen = r.lsRefs ? lsRefsListing(held.bytes, r.lsRefs.prefixes) : discoveryListing(held.bytes, r.git.service);
    if (seen.kind === 'unchecked') {
      r.log.warn({ repo: r.git.repo, backend: id, why: seen.why }, 'a listing githa cannot parse is relayed unchecked');
      return this.relayed(r, route, id, headers, held);
    }
    if (seen.kind === 'v2') return this.relayed(r, route, id, headers, held);
    const verdict = await this.verdict(r, route, id, seen.live);
    if (verdict !== 'serve') {
      const error = seen.live.kind === 'missing' ? new RepositoryNotFoundError(`repository ${r.git.repo} not found on ${id}`) : new BackendProtocolError(`backend ${id} does not hold the recorded refs of ${r.git.repo}`);
      return { kind: 'next', error, rejected: describe(seen.live), landing: verdict === 'landing' };
    }
    const out = seen.out ?? held.bytes;
    r.res.writeHead(200, { ...headers, 'content-length': String(out.length) });
    r.res.end(out);
    return { kind: 'done', fields: { backend: id, version: route.version, bytes: out.length, outcome: 'ok' } };
  }

  /** A failed or missing copy's answer, checked: dropped for the next candidate (the check marks, counts and repairs). */
  private async dropped(r: Read, route: ReadRoute, id: string, live: LiveCopy, error: Error): Promise<Attempt> {
    const verdict = await this.verdict(r, route, id, live);
    // A missing copy is never served; a failed POST whose copy the check found right is an answer to relay no more (it was dropped).
    return { kind: 'next', error, ...(verdict !== 'serve' ? { rejected: describe(live), landing: verdict === 'landing' } : {}) };
  }

  private async verdict(r: Read, route: ReadRoute, id: string, live: LiveCopy): Promise<ReadVerdict> {
    const reads = this.d.cluster.reads;
    if (reads.agrees(route, id, live)) return 'serve';
    const verdict = await reads.check(route, id, live);
    if (verdict !== 'serve') r.log.warn({ repo: r.git.repo, backend: id, live: describe(live) }, 'a copy answered what its record does not say; the read goes to another leader');
    return verdict;
  }

  /** Relays the held bytes and the rest of the answer; a relayed ERR or fatal side-band packet makes the outcome `backend-error`, never `ok`. */
  private async relayed(r: Read, route: ReadRoute, id: string, headers: Record<string, string | string[]>, held: HeldStream | HeldWire): Promise<Attempt> {
    const watch = r.git.kind === 'rpc' ? new FailureWatch() : undefined;
    const bytes = await relayAnswer(r.req, r.res, headers, held, watch);
    if (watch?.failure !== undefined) {
      r.log.warn({ repo: r.git.repo, backend: id, failure: watch.failure }, 'the backend answered the read with an error');
      return { kind: 'done', fields: { backend: id, version: route.version, bytes, outcome: 'backend-error', failure: watch.failure } };
    }
    return { kind: 'done', fields: { backend: id, version: route.version, bytes, outcome: 'ok' } };
  }
}

/** The client's request, when it is one v2 `command=ls-refs` (gitprotocol-v2), widened: its ref-prefix arguments dropped. */
function widenedLsRefs(bytes: Buffer): WidenedLsRefs | undefined {
  let pkts: Pkt[];
  try {
    pkts = decodeAll(bytes);
  } catch {
    return undefined; // not pkt-lines: the backend answers it as it would directly
  }
  const first = pkts[0];
  if (first?.type !== 'data' || pktText(first.payload) !== 'command=ls-refs') return undefined;
  // One request, ended by its flush; anything else is passed on untouched.
  if (pkts.findIndex((p) => p.type === 'flush') !== pkts.length - 1) return undefined;
  try {
    return widenLsRefs(pkts);
  } catch {
    return undefined;
  }
}

/** The body's headers: a held body is sent with its own length; an inflated one no longer says gzip. */
function editBodyHeaders(p: HeaderEditor, body: Body, sent: Buffer | undefined): void {
  if (body.kind === 'none') return;
  if (body.inflated) p.removeHeader('content-encoding');
  if (sent !== undefined) {
    p.removeHeader('transfer-encoding');
    p.setHeader('content-length', String(sent.length));
  } else if (body.inflated) {
    p.removeHeader('content-length');
  }
}

function describe(live: LiveCopy): string {
  return live.kind === 'refs' ? `refs ${live.checksum.slice(0, 12)}` : `${live.kind} (${live.detail})`;
}

function pick(headers: IncomingMessage['headers'], names: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k of names) {
    const v = headers[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
