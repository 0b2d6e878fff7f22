import type { LentCredentials } from '../../backends/types.js';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, Transform, pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Logger } from 'pino';
import type { Cluster, ForwardResult } from '../../cluster/cluster.js';
import type { ForwardHooks } from '../../cluster/types.js';
import { BackendUnavailableError, type GithaError, LimitExceededError, ProtocolSyntaxError, RepositoryNotFoundError, WriteInterruptedError } from '../../errors.js';
import { ReceivePackRequestParser, type ReceivePackRequest } from '../../protocol/receive-pack-request.js';
import { describeForLog, toClientError } from '../error-map.js';
import { clientCapabilities, rejectionBytes, type ClientCapabilities } from '../rejection.js';
import { hasHttp, type Forwarder } from './forward.js';
import { HeldResponse } from '../held-response.js';
import { clientAddress } from '../proxy-listener.js';
import { readBackendAnswer, sendBackendAnswer, type BackendAnswer } from './backend-answer.js';
import { backendRepositoryName, repositoryUrlPath } from '../../protocol/repository-name.js';
import { PushPace, pushCutError } from '../push-pace.js';
import type { RequestBudget } from '../held-bytes.js';
import { sidebandReporter, wantsProgress } from '../wait-progress.js';
import { HttpCopies } from './fan-out-copies.js';

/** The signal of a request that holds no write lock (the empty push's probe): its pace is not watched. */
const NO_LOCK = new AbortController().signal;

/** The command list (and push options) precede the pack; more than this before the pack is refused. */
const MAX_COMMAND_SECTION_BYTES = 32 * 1024 * 1024;

export interface ReceivePackContext {
  /** The client's credentials for githa's listing of the target right after the push (passthrough; HttpAuth.lend). */
  lent?: LentCredentials | undefined;
  req: IncomingMessage;
  res: ServerResponse;
  repo: string;
  user: string;
  /** githa did not verify `user` (passthrough): the push creates no repository (WriteRequest.unverified). */
  unverified?: boolean;
  cluster: Cluster;
  forwarder: Forwarder;
  log: Logger;
  maxCommands: number;
  /** What this request may hold (src/frontends/held-bytes.ts): the command list is refused (413/503) before it is held past it. */
  budget?: RequestBudget | undefined;
  /** Header edits for the request to one backend (src/frontends/http/auth.ts: credentials, user header). */
  backendHeaders?: (backendId: string) => (proxyReq: ClientRequest) => void;
  /** Whether the backend's Set-Cookie reaches the client (passthrough; HttpAuth.relaysCookies). */
  relayCookies?: boolean;
  /** Cap on the inflated command section of a gzip body (http.maxInflatedBytes); the pack after it streams uncapped. */
  maxInflatedBytes?: number;
  /**
   * Chaos harness only (tools/chaos/githa-ack-before-commit.ts; docs/chaos.md):
   * release the report before the version is committed, breaking "ack after
   * commit" on purpose so the checker can show it catches it. No config key
   * or environment variable sets it: only a program that calls startGitha
   * with this hook.
   */
  ackBeforeCommit?: boolean;
}

/**
 * POST /<repo>/git-receive-pack (gitprotocol-http "Smart Service git-receive-pack").
 * The command list is read before anything else happens, so an empty or
 * malformed request never takes the lock; the rest of the body (the pack) then
 * streams to the chosen leader, and the answer's tail is held until the new
 * version is recorded.
 */
export async function handleReceivePack(ctx: ReceivePackContext): Promise<{ backend?: string | undefined; outcome: string; bytes: number }> {
  const { req, res, repo, cluster, forwarder, log } = ctx;
  const gzip = /\bgzip\b/i.test(String(req.headers['content-encoding'] ?? ''));
  const source: Readable = gzip ? pipeline(req, createGunzip(), () => {}) : req;
  const sectionCap = gzip ? Math.min(MAX_COMMAND_SECTION_BYTES, ctx.maxInflatedBytes ?? MAX_COMMAND_SECTION_BYTES) : MAX_COMMAND_SECTION_BYTES;
  let section: { request: ReceivePackRequest; prefix: Buffer };
  try {
    section = await readCommandSection(source, ctx.maxCommands, sectionCap, ctx.budget);
  } catch (err) {
    // Refused before the pack: what the client still sends is read and dropped (never held) until the
    // answer is out, then the connection closes (an answer sent over an unread body could be reset away).
    if (gzip) req.unpipe();
    req.resume();
    ctx.res.shouldKeepAlive = false;
    throw err;
  }
  const { request, prefix } = section;
  log.debug({ repo, commands: request.commands.length, capabilities: request.capabilities }, 'push command list read');
  const caps = clientCapabilities(request.capabilities);
  const { sideband } = caps;
  // githa's waits (lock, catch-up, quorum copies) as band-2 progress, where the client asked for side-band
  // (docs/architecture.md "What the Git user sees while githa waits"). The first line sends the 200 and its headers:
  // any failure after it is answered in-band (sendRejection), never as an HTTP error. A passthrough push that
  // carries no credentials shows none: its backend may still answer 401, and git retries with credentials only
  // when that 401 is the HTTP status (docs/security.md "Authentication"), not an in-band refusal.
  const waits = wantsProgress(request.capabilities) && !(ctx.unverified === true && ctx.lent === undefined)
    ? sidebandReporter((bytes) => {
        if (res.destroyed || res.writableEnded) return;
        if (!res.headersSent) res.writeHead(200, RESULT_HEADERS);
        res.write(bytes);
      })
    : undefined;

  // The body githa sends on: the bytes already read, then the rest, untouched.
  // (Counted on the way in: a 'data' listener on `body` would drain it.)
  let pushedBytes = prefix.length;
  /** Watches the client's pace while the push holds the write lock (docs/security.md "Slow pushes"). */
  let pace: PushPace | undefined;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      pushedBytes += chunk.length;
      pace?.add(chunk.length);
      callback(null, chunk);
    },
  });
  const body = new PassThrough({ highWaterMark: 256 * 1024 });
  body.write(prefix);
  pipeline(source, counter, body, () => {});
  let bodyEnded = false;
  body.on('end', () => {
    bodyEnded = true;
    pace?.stop();
  });
  /** Set when githa stopped the push for its pace: the backend's request is cut before the pack's end. */
  let cut: GithaError | undefined;
  const cutter = new AbortController();

  let sink: HeldResponse | undefined;
  let clientGone = false;
  let passthrough: BackendAnswer | undefined;
  /** The backend the push went to last (for the request's log line). */
  let backend: string | undefined;
  /** The copies of a fan-out push (ForwardHooks.copies), fed from `body` by a tee. */
  let fan: HttpCopies | undefined;
  const path = `${repositoryUrlPath(backendRepositoryName(repo))}/git-receive-pack`;
  // The same edits for the target's request and each copy's.
  const editHeaders = (backendId: string) => (p: ClientRequest): void => {
    ctx.backendHeaders?.(backendId)(p);
    // githa inflated the body to read the command list: send it plain, and
    // chunked (its length is unknown). Otherwise the body is the client's own
    // bytes and keeps its Content-Length: some backends refuse chunked
    // bodies (411; docs/protocol.md).
    if (gzip) {
      p.removeHeader('content-encoding');
      p.removeHeader('content-length');
    }
    p.removeHeader('expect');
  };

  const forward = async (target: ReturnType<Cluster['backend']>, signal: AbortSignal, hooks?: ForwardHooks): Promise<ForwardResult> => {
    if (!target.http) throw new BackendUnavailableError(`backend ${target.id} has no HTTP endpoint`, target.id);
    log.debug({ repo, backend: target.id }, 'forwarding push');
    backend = target.id;
    const limits = cluster.config.push;
    if (!bodyEnded && signal !== NO_LOCK) {
      pace = new PushPace(limits, (reason) => {
        cut = pushCutError(reason, limits);
        log.warn({ repo, backend: target.id, reason, bytes: pushedBytes }, 'push stopped for its pace; its backend request is cut');
        cluster.observer.pushLimited(reason);
        cutter.abort(cut);
      });
    }
    try {
      if (!hooks || hooks.copies.length === 0) return await forwardTo(target, target.http, signal, body);
      return await fanOut(target, target.http, signal, hooks);
    } finally {
      pace?.stop();
    }
  };

  /**
   * Fan-out (docs/architecture.md "A push (receive-pack)"): the body goes to the target and to every copy at
   * once; only the target's answer reaches the client. Settles once the target and every copy have.
   */
  const fanOut = async (target: ReturnType<Cluster['backend']>, baseUrl: string, signal: AbortSignal, hooks: ForwardHooks): Promise<ForwardResult> => {
    fan?.detach('a later attempt');
    const copies = new HttpCopies(body, { req, res, forwarder, log, repo, path, copies: hooks.copies, stallMs: hooks.stallMs, sideband, editHeaders, budget: ctx.budget, gzip });
    fan = copies;
    // Safety rule 2 for the copies too: a lost lock, or a push cut for its pace, cuts each before the pack's end.
    const onLost = (): void => copies.cut('the write lock was lost');
    const onCut = (): void => copies.cut('the push was stopped for its pace');
    signal.addEventListener('abort', onLost, { once: true });
    cutter.signal.addEventListener('abort', onCut, { once: true });
    try {
      const result = await forwardTo(target, baseUrl, signal, copies.targetBody);
      // The target's exchange ended before the push did (a refusal, a cut): no copy may take the rest.
      if (!bodyEnded) copies.cut(`the target ${target.id} ended its exchange first`);
      return { ...result, copies: await copies.settled(hooks.stallMs) };
    } catch (err) {
      copies.detach(`the target ${target.id} failed`);
      await copies.settled(hooks.stallMs);
      throw err;
    } finally {
      signal.removeEventListener('abort', onLost);
      cutter.signal.removeEventListener('abort', onCut);
    }
  };

  const forwardTo = async (target: ReturnType<Cluster['backend']>, baseUrl: string, signal: AbortSignal, sent: Readable): Promise<ForwardResult> => {
    let fwd;
    try {
      fwd = await forwarder.send(req, res, {
        baseUrl,
        backendId: target.id,
        path,
        body: sent,
        signal: cutter.signal,
        // Never a kept-alive connection: one the backend closes just as the POST
        // reaches it would fail with bytes "sent" and freeze the repository
        // (docs/architecture.md "A push (receive-pack)" 5).
        freshConnection: true,
        editHeaders: editHeaders(target.id),
      });
    } catch (err) {
      // The client's side broke off (it went away, or its body could not be
      // read) before the whole body reached the backend: the pack is
      // incomplete, so no ref can have changed. 'cut' lets the cluster verify
      // that on the target and clear the marker, instead of freezing writes.
      // (req.destroyed is no sign: a request read to its end is auto-destroyed.)
      // A push githa cut for its pace ends the same way: the pack stopped short on the backend.
      if (cut) return { ending: 'cut' };
      if (!bodyEnded && (body.errored !== null || req.socket.destroyed)) {
        clientGone = true;
        return { ending: 'cut' };
      }
      throw err;
    }
    // Safety rule 2: a lost lock cuts the backend stream before the pack's last byte.
    const onAbort = (): void => {
      if (!bodyEnded) fwd.upstream.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    cutter.signal.addEventListener('abort', onAbort, { once: true });
    log.debug({ repo, backend: target.id, status: fwd.res.statusCode }, 'backend answered the push');
    try {
      if (fwd.res.statusCode !== 200) {
        const status = fwd.res.statusCode ?? 502;
        passthrough = await readBackendAnswer(fwd.res, `githa: backend ${target.id} answered HTTP ${status}\n`, { cookies: ctx.relayCookies === true });
        // A 4xx is the web server's or git http-backend's answer before
        // git-receive-pack ran (authentication, a disabled service, a bad
        // request): no ref can have changed, so no version is recorded and the
        // marker goes. (A 5xx may come after it ran: the cluster verifies.)
        return status >= 400 && status < 500 ? { ending: 'complete', noop: true } : { ending: 'complete' };
      }
      const cookies = ctx.relayCookies === true ? fwd.res.headers['set-cookie'] : undefined;
      // Already sent when a wait was shown: the backend's cookies are then not relayed.
      if (!res.headersSent) res.writeHead(200, { ...RESULT_HEADERS, ...(cookies ? { 'set-cookie': cookies } : {}) });
      sink = new HeldResponse(res, { sideband });
      const ok = await new Promise<boolean>((resolve) => pipeline(fwd.res, sink!, (err) => resolve(!err)));
      log.debug({ repo, backend: target.id, ok, bytes: sink.bytes }, 'push answer read');
      // The report is held until the version is recorded: counted, never refused (the push has run).
      ctx.budget?.charge(sink.heldLength);
      if (!ok) return { ending: bodyEnded ? 'unknown' : 'cut' };
      // TEST ONLY (docs/chaos.md): a deliberately broken write path for the chaos checker to catch.
      if (ctx.ackBeforeCommit === true) res.end(sink.heldBytes());
      return { ending: 'complete', report: sink.report(), bytes: pushedBytes };
    } finally {
      signal.removeEventListener('abort', onAbort);
      cutter.signal.removeEventListener('abort', onAbort);
    }
  };

  let failure: unknown;
  let outcome = 'unknown';
  try {
    if (request.commands.length === 0) {
      // Nothing to update (git's probe before a large push, or an empty push):
      // no lock, no version, but still a real answer from a leader.
      const route = await cluster.routeWriteAdvertisement(repo, hasHttp);
      const target = route.candidates[0];
      if (!target) throw new BackendUnavailableError('no leader', 'none');
      const result = await forward(target, NO_LOCK);
      outcome = result.ending === 'complete' ? 'no-op' : 'interrupted';
    } else {
      const result = await cluster.write({ repo, user: ctx.user, transport: 'http', ip: clientAddress(ctx.req.socket), commands: request.commands, accepts: hasHttp, lent: ctx.lent, unverified: ctx.unverified, waits }, forward);
      outcome = result.kind;
      if (result.kind === 'interrupted') failure = new WriteInterruptedError(repo, result.backend);
    }
  } catch (err) {
    failure = err;
  }
  // A cut push is never acknowledged, whatever the target held afterwards (docs/architecture.md "A push" 6).
  if (cut) failure ??= cut;
  // Whatever the outcome, read the client's body to its end, discarding what no
  // backend took: a client still uploading its pack when githa answers (a push
  // refused or interrupted mid-way) would otherwise stall on a full TCP window
  // and never see the answer.
  if (!bodyEnded) {
    fan?.detach('the push ended');
    body.unpipe();
    body.resume();
  }

  if (failure === undefined && clientGone && !sink && !passthrough) {
    log.info({ repo, outcome }, 'the push request broke off before its end');
    res.destroy();
    return { backend, outcome: `client-gone-${outcome}`, bytes: 0 };
  }
  if (failure === undefined && passthrough) {
    // The backend's refusal as it sent it (a 401 keeps its challenge, so git asks for credentials and retries);
    // after a progress line the status is sent already, so the refusal is told in-band.
    if (res.headersSent) sendRejection(res, request, caps, `backend ${backend ?? ''} answered HTTP ${passthrough.status}`);
    else sendBackendAnswer(res, passthrough);
    return { backend, outcome: `backend-${passthrough.status}`, bytes: 0 };
  }
  if (failure === undefined && sink) {
    if (!res.writableEnded) res.end(sink.heldBytes());
    return { backend, outcome, bytes: pushedBytes };
  }
  if (cut) {
    // The client may still be sending: its trickle must not keep the connection once it has the answer.
    if (!res.headersSent) res.setHeader('connection', 'close');
    res.once('finish', () => setTimeout(() => req.socket.destroy(), 1_000).unref());
  }
  // A missing repository is answered as a caller without access is, before its body (server.ts): 404,
  // text/plain, the same words, so the answer says nothing of whether the repository exists (docs/security.md).
  if (failure instanceof RepositoryNotFoundError && !res.headersSent) throw failure;
  const error = toClientError(failure);
  const level = error.level;
  log[level]({ repo, code: error.code, err: describeForLog(failure) }, 'push refused');
  sendRejection(res, request, caps, error.message);
  return { backend, outcome: error.code, bytes: 0 };
}

/** The headers of receive-pack's answer (gitprotocol-http "Smart Service git-receive-pack"). */
const RESULT_HEADERS = { 'content-type': 'application/x-git-receive-pack-result', 'cache-control': 'no-cache' } as const;

function sendRejection(res: ServerResponse, request: ReceivePackRequest, caps: ClientCapabilities, message: string): void {
  if (res.destroyed || res.writableEnded) return;
  if (!res.headersSent) res.writeHead(200, RESULT_HEADERS);
  res.end(rejectionBytes(request.commands.map((c) => c.ref), caps, message));
}

/**
 * Reads the body until the command list (and push options) are complete, then
 * pauses it. ('data' + pause(), not 'readable': a stream that had a 'readable'
 * listener may stay non-flowing when piped right after the listener is removed.)
 */
async function readCommandSection(source: Readable, maxCommands: number, maxBytes: number, budget: RequestBudget | undefined): Promise<{ request: ReceivePackRequest; prefix: Buffer }> {
  const parser = new ReceivePackRequestParser({ maxCommands });
  const seen: Buffer[] = [];
  let total = 0;
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      source.pause();
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
    };
    const onError = (err: Error): void => {
      cleanup();
      // zlib's errors (Z_DATA_ERROR, …): the body is not what its Content-Encoding says. A client's mistake, not githa's.
      const zlib = String((err as NodeJS.ErrnoException).code ?? '').startsWith('Z_');
      reject(zlib ? new ProtocolSyntaxError(`the request body is not valid gzip: ${err.message}`, { cause: err }) : err);
    };
    const onEnd = (): void => {
      cleanup();
      reject(new ProtocolSyntaxError('the push request ended before its command list did'));
    };
    const onData = (chunk: Buffer): void => {
      try {
        // Counted before it is held: past the request's budget (413) or the process's (503) it is refused, not kept.
        budget?.take(chunk.length, 'the push command list');
        seen.push(chunk);
        total += chunk.length;
        const request = parser.write(chunk);
        if (request) {
          cleanup();
          // Everything read so far goes on untouched: the command section and the pack's start.
          resolve({ request, prefix: Buffer.concat(seen) });
          return;
        }
        if (total > maxBytes) throw new LimitExceededError(`the push command list is larger than ${maxBytes} bytes`);
      } catch (err) {
        cleanup();
        reject(err);
      }
    };
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
  });
}
