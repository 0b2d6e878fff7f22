import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { ClientTimeoutError, GithaError, ProtocolSyntaxError, UnsupportedRequestError } from '../../errors.js';
import { encodePkt, PktLineDecoder } from '../../protocol/pkt-line.js';
import { parseGitDaemonRequest } from '../../protocol/request.js';
import { toClientError } from '../error-map.js';
import { ConnectionLimiter, type Admission } from '../http/limits.js';
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
  return createServer((socket) => {
    const clog = log.child({ conn: randomBytes(4).toString('hex'), ip: socket.remoteAddress });
    // A client's reset ends the socket ('close' follows), which the session sees as the
    // channel closing; logged at debug like the SSH frontend's connection errors.
    socket.on('error', (err) => clog.debug({ err: err.message }, 'git:// connection error'));
    const started = performance.now();
    const admission = limiter.admit(socket.remoteAddress);
    if (admission.ok) socket.once('close', admission.release);
    handle(socket, clog, admission).then(
      (fields) => clog.info({ ...fields, ms: Math.round(performance.now() - started) }, 'request'),
      (err: unknown) => {
        clog.error({ err: (err as Error)?.message }, 'git:// request failed');
        socket.destroy();
      },
    );
  });

  async function handle(socket: Socket, clog: Logger, admission: Admission): Promise<Record<string, unknown>> {
    const channel = socketChannel(socket);
    let request;
    try {
      const payload = await readFirstPkt(socket, config.gitDaemon.requestTimeoutMs);
      // Over a limit, the request is still read first: git shows an ERR packet only as the answer to its request.
      if (!admission.ok) throw admission.error;
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
    const result = await serveStream(
      { ...deps, log: clog, maxHeldListingBytes: config.read.maxHeldListingBytes, maxHeldRequestBytes: config.read.maxReplayBodyBytes },
      { repo: request.repo, service: request.service, protocol, user: config.auth.anonymousUser, authenticated: false, transport: 'git' },
      channel,
    );
    return { ...fields, ...result };
  }
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
