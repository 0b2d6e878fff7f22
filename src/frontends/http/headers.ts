import type { IncomingMessage } from 'node:http';
import { clientAddress } from '../proxy-listener.js';
import { clientKey } from './limits.js';

/**
 * Request-header hygiene between a client and a backend (docs/security.md
 * "Headers a backend sees").
 *
 * A backend's web server hands request headers to `git http-backend` (a CGI)
 * as `HTTP_<NAME>` variables, and trusts some of them: the user a front proxy
 * verified (`X-Remote-User`, auth.http.userHeader) and the client's address
 * (`X-Forwarded-For`). A CGI gateway maps every byte of a name that is not a
 * letter or digit to `_` and upper-cases the rest (RFC 3875 4.1.18; lighttpd
 * does so for any such byte), so `X_Remote_User`, `x-remote-user` and
 * `X.Remote.User` all become HTTP_X_REMOTE_USER: names are compared folded.
 */

/** Identity and forwarding headers: a client's never reach a backend; githa sets its own (setForwardingHeaders). */
export const IDENTITY_HEADERS: readonly string[] = [
  'remote-user',
  'x-remote-user',
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-preferred-username',
  'x-auth-request-user',
  'x-auth-request-email',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-forwarded-prefix',
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  // "httpoxy": a `Proxy` header is HTTP_PROXY in a CGI's environment, which HTTP libraries read as their proxy.
  'proxy',
];

/** Headers that describe one hop, never forwarded (RFC 9110 7.6.1). */
export const HOP_BY_HOP: readonly string[] = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate'];

/**
 * Headers a client's `Connection` may not remove (RFC 9110 7.6.1 lets a proxy
 * drop the fields it names): the framing and the target, which githa sets for
 * the backend's hop itself.
 */
const KEPT = new Set(['host', 'content-length', 'transfer-encoding', 'content-type', 'content-encoding'].map(cgiName));

/** A header name as a CGI variable sees it: case folded, every byte but a letter or digit the same. */
export function cgiName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '_');
}

/**
 * Which of `names` (the request's header names, as sent on to a backend) go:
 * hop-by-hop headers, identity and forwarding headers, `extra` (the configured
 * auth.http.userHeader), and every header the client's `Connection` names, in
 * any spelling that maps to the same CGI variable.
 */
export function headersToStrip(names: readonly string[], connection: string | string[] | undefined, extra: readonly string[] = []): string[] {
  const drop = new Set([...HOP_BY_HOP, ...IDENTITY_HEADERS, ...extra].map(cgiName));
  const listed = (Array.isArray(connection) ? connection.join(',') : (connection ?? '')).split(',');
  for (const token of listed) {
    const name = cgiName(token.trim());
    if (name !== '' && !KEPT.has(name)) drop.add(name);
  }
  return names.filter((n) => drop.has(cgiName(n)));
}

/** The headers of a request to a backend as githa edits them: node's ClientRequest (http-proxy), or githa's own HeaderBag (src/frontends/http/wire.ts). */
export interface HeaderEditor {
  getHeaderNames(): string[];
  removeHeader(name: string): void;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
}

/**
 * Removes what headersToStrip names from a request to a backend and sets
 * githa's own forwarding headers, from the connection githa accepted: the
 * client's address (the TCP peer's, or a trusted balancer's PROXY header's;
 * never what the client claims in a header), githa's port and
 * scheme, and the Host the client asked for.
 */
export function cleanBackendRequest(proxyReq: HeaderEditor, req: IncomingMessage, extra: readonly string[]): void {
  for (const h of headersToStrip(proxyReq.getHeaderNames(), req.headers.connection, extra)) proxyReq.removeHeader(h);
  proxyReq.setHeader('x-forwarded-for', clientKey(clientAddress(req.socket)));
  // listen.https hands its TLS sockets to the same server (src/frontends/http/https.ts): the scheme is the socket's.
  proxyReq.setHeader('x-forwarded-proto', (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http');
  if (req.socket.localPort !== undefined) proxyReq.setHeader('x-forwarded-port', String(req.socket.localPort));
  if (req.headers.host !== undefined) proxyReq.setHeader('x-forwarded-host', req.headers.host);
}
