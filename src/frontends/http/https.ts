import type { Server as HttpServer } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { createServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { certificateUser } from '../../auth/client-cert.js';
import { clientAddress, listenerFor } from '../proxy-listener.js';
import { TlsCredentials, type TlsConfig } from './tls-credentials.js';

export interface HttpsFrontend {
  /** The listener: a TLS server (listen it like the others; a PROXY-protocol wrapper may feed it connections). */
  server: TlsServer;
  /** What githa listens on: `server`, or with listen.proxyProtocolFrom the PROXY-protocol reader in front of it (the header precedes the handshake). */
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
export function createHttpsServer(http: HttpServer, config: TlsConfig, log: Logger, limits: { maxConnections: number; headersTimeoutMs: number }, proxyProtocolFrom: readonly string[] = []): HttpsFrontend {
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
  // Handshakes in progress count too: the HTTP limits see a connection only once it is through.
  server.maxConnections = limits.maxConnections;
  // Before node's own 'connection' listener builds the TLS socket: a renewed certificate is used by this connection already.
  server.prependListener('connection', () => {
    const next = credentials.refresh();
    if (!next) return;
    server.setSecureContext(next);
    log.info({ cert: config.cert }, 'tls certificate reloaded');
  });
  // Old protocol versions, unverified client certificates under `require`, port scanners: one debug line each.
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    log.debug({ client: clientAddress(socket), err: err.code ?? err.message }, 'tls handshake failed');
  });
  const listener = listenerFor(server, { trusted: proxyProtocolFrom }, log);
  // Connections still reading their PROXY header count against the same cap as handshakes (node enforces it where it accepts).
  if (listener !== server) listener.maxConnections = limits.maxConnections;
  return {
    server,
    listener,
    close() {
      server.close();
      if (listener !== server) listener.close();
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
