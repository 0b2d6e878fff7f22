import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { ClientTimeoutError, GithaError, ProtocolSyntaxError, UnsupportedRequestError } from '../../errors.js';
import { encodePkt, PktLineDecoder } from '../../protocol/pkt-line.js';
import { parseGitDaemonRequest } from '../../protocol/request.js';
import { toClientError } from '../error-map.js';
import { clientAddress, proxyProtocolAcceptor } from '../proxy-listener.js';
import { ConnectionLimiter } from '../http/limits.js';
import { serveStream, type ClientChannel, type StreamDeps } from '../stream/session.js';

/**
 * The git:// front end (gitprotocol-pack "git:// transport"): the first
 * pkt-line names the service, the path and, after a second NUL, extra
 * parameters such as `version=2`. Reads by default; pushes only when
 * `gitDaemon.allowPush` is set, because git:// carries no authentication.
 */
export function createGitDaemonFrontend(config: Config, deps: StreamDeps, log: Logger): Server {
  // Connections per client address and in all (gitDaemon.maxConnectionsPerClient / maxConnections).
  const limiter = new ConnectionLimiter(config.gitDaemon);
  const observe = (outcome: string, service: string, started: number): void =>
    deps.cluster.observer.request({ transport: 'git', service, outcome, seconds: (performance.now() - started) / 1000, bytes: 0 });
  // Behind a trusted balancer a socket arrives here once its PROXY header is read, and its
  // client's address is the header's: for the per-client limit and the log (src/frontends/proxy-listener.ts).
  const accept = proxyProtocolAcceptor({ trusted: config.listen.proxyProtocolFrom }, log, (socket) => {
    const ip = clientAddress(socket);
    const clog = log.child({ conn: randomBytes(4).toString('hex'), ip });
    // A client's reset ends the socket ('close' follows), which the session sees as the
    // channel closing; logged at debug like the SSH frontend's connection errors.
    socket.on('error', (err) => clog.debug({ err: err.message }, 'git:// connection error'));
    const started = performance.now();
    const admission = limiter.admit(ip);
    if (!admission.ok) {
      refuseConnection(socket, admission.error, clog);
      observe(toClientError(admission.error).code, 'none', started);
      return;
    }
    socket.once('close', admission.release);
    // Each admitted connection holds a slot, and from its request line on a backend's git daemon
    // child: one quiet in both directions for idleTimeoutMs is closed, and with it the backend's
    // connection (src/frontends/stream/relay.ts; docs/security.md "git://").
    const idleMs = config.gitDaemon.idleTimeoutMs;
    socket.setTimeout(idleMs, () => {
      clog.info({ ms: idleMs }, 'git:// connection idle, closed');
      socket.destroy();
    });
    handle(socket, clog, ip).then(
      (fields) => {
        if (fields.service === undefined) observe(String(fields.outcome), 'none', started);
        clog.info({ ...fields, ms: Math.round(performance.now() - started) }, 'request');
      },
      (err: unknown) => {
        clog.error({ err: (err as Error)?.message }, 'git:// request failed');
        socket.destroy();
      },
    );
  });
  return createServer(accept);

  async function handle(socket: Socket, clog: Logger, ip: string | undefined): Promise<Record<string, unknown>> {
    const channel = socketChannel(socket);
    let request;
    try {
      const payload = await readFirstPkt(socket, config.gitDaemon.requestTimeoutMs);
      request = parseGitDaemonRequest(payload);
    } catch (err) {
      const e = toClientError(err);
      clog.info({ code: e.code }, 'git:// request refused');
      await channel.refuse(e.message);
      return { outcome: e.code };
    }
    const fields = { repo: request.repo, service: request.service, protocolVersion: request.protocolVersion };
    if (request.service === 'git-receive-pack' && !config.gitDaemon.allowPush) {
      await channel.refuse('pushing over git:// is disabled on this server; push over SSH or HTTPS');
      return { ...fields, outcome: 'push-disabled' };
    }
    const protocol = request.extraParams.length > 0 ? request.extraParams.join(':') : undefined;
    // A push's silences are githa's own (the lock wait, a catch-up, the quorum copies: locks.waitMs,
    // replication.*) or, while it holds the lock, bounded by push.* (src/frontends/push-pace.ts): the
    // idle timeout would cut a push githa itself keeps waiting. It is armed again once the push is over.
    const push = request.service === 'git-receive-pack';
    if (push) socket.setTimeout(0);
    const result = await serveStream(
      { ...deps, log: clog, maxHeldListingBytes: config.read.maxHeldListingBytes, maxHeldRequestBytes: config.read.maxReplayBodyBytes },
      { repo: request.repo, service: request.service, protocol, user: config.auth.anonymousUser, authenticated: false, transport: 'git', ip },
      channel,
    );
    if (push && !socket.destroyed) socket.setTimeout(config.gitDaemon.idleTimeoutMs);
    return { ...fields, ...result };
  }
}

/** How long a connection refused over a limit stays open for its client to read the refusal, at most. */
const REFUSED_LINGER_MS = 1_000;

/**
 * Refuses a connection over a limit at once, without waiting for its request
 * line: git writes its request and then reads, so the ERR packet written
 * first is still the answer it shows ("fatal: remote error: …"). What the
 * client sends is read and dropped, so the close is a FIN and never a reset
 * that could discard the answer; the socket is gone when the client closes
 * (one round trip for git) or after REFUSED_LINGER_MS, so refused connections
 * cannot pile up holding file descriptors (docs/security.md "Connections").
 */
function refuseConnection(socket: Socket, err: unknown, clog: Logger): void {
  const e = toClientError(err);
  clog.info({ code: e.code }, 'git:// connection refused');
  socket.resume();
  socket.end(encodePkt(`ERR githa: ${e.message}\n`));
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}

/** Reads the request pkt-line; bytes after it are put back for the service. */
function readFirstPkt(socket: Socket, timeoutMs: number): Promise<Buffer> {
  const decoder = new PktLineDecoder();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new ClientTimeoutError(`no request within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    const done = (err: Error | null, payload?: Buffer): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (err) reject(err);
      else resolve(payload!);
    };
    const onEnd = (): void => done(new ProtocolSyntaxError('the connection closed before a request'));
    const onData = (chunk: Buffer): void => {
      try {
        decoder.write(chunk);
        const pkt = decoder.next();
        if (!pkt) {
          if (decoder.bufferedLength > 4 + 65516) throw new ProtocolSyntaxError('request line too long');
          return;
        }
        if (pkt.type !== 'data') throw new UnsupportedRequestError('expected a git:// request line');
        const rest = decoder.rest();
        if (rest.length > 0) socket.unshift(rest);
        done(null, pkt.payload);
      } catch (err) {
        done(err instanceof GithaError ? err : new ProtocolSyntaxError(String(err)));
      }
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}

/** A git:// socket as a ClientChannel: no stderr and no exit status; errors travel as ERR packets. */
function socketChannel(socket: Socket): ClientChannel {
  let finished = false;
  return {
    input: socket,
    output: socket,
    errors: null,
    async finish() {
      if (finished) return;
      finished = true;
      // Read on (readFirstPkt paused the socket): the client's own end closes the socket at
      // once; a client that never sends it is closed by the idle timeout.
      socket.resume();
      await new Promise<void>((resolve) => socket.end(() => resolve()));
    },
    async refuse(message: string) {
      if (finished || socket.destroyed) return;
      // gitprotocol-pack: "ERR <message>" instead of an advertisement; git prints "fatal: remote error: …".
      socket.write(encodePkt(`ERR githa: ${message}\n`));
      await this.finish(128);
    },
  };
}
