import type { Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { certificateUser } from '../../auth/client-cert.js';
import { clientAddress, proxyProtocolAcceptor } from '../proxy-listener.js';
import { ConnectionLimiter } from './limits.js';
import { TlsCredentials, type TlsConfig } from './tls-credentials.js';

export interface HttpsFrontend {
  /** The TLS server: it never listens itself; `listener` hands it the connections githa admits. */
  server: TlsServer;
  /** What githa listens on: admits each connection (after a trusted balancer's PROXY header, which precedes the handshake) and hands it to `server`. */
  listener: NetServer;
  close(): void;
}

/**
 * listen.https (docs/security.md "TLS"): TLS in front of the HTTP front end's
 * own server. Each connection, once its handshake is done, is handed to that
 * node:http server as if it had accepted it: the same request handler, the
 * same connection limits, timeouts and refusals (src/frontends/http/limits.ts),
 * and one close() for both. Only the handshake is this file's.
 *
 * Client certificates (tls.clientCertificates): `optional` asks for one and
 * lets connections without one (or with one that does not verify) through
 * unidentified; `require` refuses them in the handshake. Which user a
 * verified one is: httpsUser below (src/auth/client-cert.ts).
 */
export function createHttpsServer(
  http: HttpServer,
  config: TlsConfig,
  log: Logger,
  limits: { maxConnections: number; maxConnectionsPerClient: number; headersTimeoutMs: number },
  proxyProtocolFrom: readonly string[] = [],
): HttpsFrontend {
  const credentials = new TlsCredentials(config, (message) => log.error({ message }, 'tls certificate'));
  const clientCerts = config.clientCertificates !== 'off';
  const server = createServer(
    {
      ...credentials.options(),
      requestCert: clientCerts,
      rejectUnauthorized: config.clientCertificates === 'require',
      // HTTP/1.1 only: git speaks it, and the handler is node:http's.
      ALPNProtocols: ['http/1.1'],
      // The handshake is part of the wait for a request's head: no longer than http.headersTimeoutMs (node: 120 s).
      handshakeTimeout: limits.headersTimeoutMs,
    },
    (socket) => http.emit('connection', socket),
  );
  // ... so one address's handshakes in progress have a cap of their own (http.maxConnectionsPerClient): an address
  // that opens connections and never finishes a handshake would otherwise fill maxConnections for every client
  // until headersTimeoutMs (docs/security.md "Connections"). Over it, the connection is closed: there is no TLS yet
  // to carry a 429.
  const handshaking = new ConnectionLimiter(limits);
  const releases = new WeakMap<Socket, () => void>();
  server.on('secureConnection', (socket: TLSSocket) => {
    // The handshake is through: from here the HTTP front end's limiter counts the connection. (`_parent` is the TCP
    // socket node's TLS server wrapped; without it, the count is released when that socket closes.)
    const raw = (socket as unknown as { _parent?: Socket })._parent;
    if (raw) releases.get(raw)?.();
  });
  // githa's own net.Server accepts every connection (after a trusted balancer's PROXY header,
  // src/frontends/proxy-listener.ts) and decides before the TLS server sees it: a connection refused here is
  // destroyed without ever being wrapped in a TLSSocket, and a renewed certificate is used by this connection already.
  const accept = (socket: Socket): void => {
    const admission = handshaking.admit(clientAddress(socket));
    if (!admission.ok) {
      log.debug({ client: clientAddress(socket) }, 'tls connection closed: too many handshakes in progress from its address');
      socket.destroy();
      return;
    }
    releases.set(socket, admission.release);
    socket.once('close', admission.release);
    const next = credentials.refresh();
    if (next) {
      server.setSecureContext(next);
      log.info({ cert: config.cert }, 'tls certificate reloaded');
    }
    server.emit('connection', socket);
  };
  // Old protocol versions, unverified client certificates under `require`, port scanners: one debug line each.
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    log.debug({ client: clientAddress(socket), err: err.code ?? err.message }, 'tls handshake failed');
  });
  const listener = createNetServer(proxyProtocolFrom.length > 0 ? proxyProtocolAcceptor({ trusted: proxyProtocolFrom }, log, accept) : accept);
  // Handshakes in progress (and PROXY headers being read) count too: the HTTP limits see a connection only once it is through.
  listener.maxConnections = limits.maxConnections;
  return {
    server,
    listener,
    close() {
      server.close();
      listener.close();
    },
  };
}

/**
 * The user a request's verified client certificate identifies, or undefined
 * (plain HTTP, no certificate, or one that did not verify against tls.clientCa).
 */
export function httpsUser(socket: unknown, users: Readonly<Record<string, string>> | undefined): string | undefined {
  const tls = socket as Partial<TLSSocket>;
  if (tls.encrypted !== true || typeof tls.getPeerCertificate !== 'function') return undefined;
  return certificateUser(tls.getPeerCertificate(), tls.authorized === true, users);
}
