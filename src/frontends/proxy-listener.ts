/**
 * The PROXY protocol on githa's listeners (docs/security.md "Client addresses
 * behind a load balancer"). A connection from a peer in
 * `listen.proxyProtocolFrom` must start with a PROXY header, v1 or v2
 * (src/protocol/proxy-protocol.ts), within HEADER_TIMEOUT_MS; the header is
 * taken off and every byte after it is handed on untouched, and the client's
 * address it names is what `clientAddress(socket)` answers from then on: for
 * limits, logs and the push log. A trusted peer whose header is missing or
 * malformed is logged and closed. A connection from any other address is
 * never read for a header: it is handed on as it came, so a PROXY header from
 * it is just bad input to that protocol (and its own address is the client's).
 *
 * Generic: `proxyProtocolAcceptor` wraps any connection handler (the SSH
 * guard's, git://'s), and `listenerFor` puts a net.Server in front of any
 * server that takes sockets through `emit('connection')` (node:http, and
 * node:tls, where the header precedes the TLS handshake).
 */
import { BlockList, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { parseCidr } from '../config/cidr.js';
import { parseProxyHeader, type ProxyHeaderResult } from '../protocol/proxy-protocol.js';

/** How long a trusted peer has to send its header: HAProxy writes it with the connection's first bytes. */
export const HEADER_TIMEOUT_MS = 5_000;

export interface ProxyProtocolOptions {
  /** `listen.proxyProtocolFrom`: the peers that send a PROXY header (CIDR ranges, checked by the config schema). */
  trusted: readonly string[];
  /** Default HEADER_TIMEOUT_MS. */
  headerTimeoutMs?: number;
}

/** The client address a PROXY header named, per raw socket. */
const proxied = new WeakMap<object, string>();

/**
 * The client's address: the one its PROXY header named, else the TCP peer's.
 * Works for the raw socket and for a TLSSocket node:tls built on it (its
 * `_parent` is the raw socket a tls.Server was handed).
 */
export function clientAddress(socket: Duplex): string | undefined {
  const s = socket as Duplex & { remoteAddress?: string; _parent?: object | null };
  return proxied.get(s) ?? (s._parent ? proxied.get(s._parent) : undefined) ?? s.remoteAddress;
}

/** Whether a peer address is trusted to send a PROXY header. */
export function trustedPeers(cidrs: readonly string[]): (address: string | undefined) => boolean {
  if (cidrs.length === 0) return () => false;
  const list = new BlockList();
  for (const text of cidrs) {
    const c = parseCidr(text);
    if (c) list.addSubnet(c.address, c.prefix, c.family);
  }
  return (address) => {
    if (!address) return false;
    // A dual-stack listener shows an IPv4 peer as ::ffff:a.b.c.d; an IPv4 range names it.
    const v4 = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : undefined;
    return v4 ? list.check(v4, 'ipv4') || list.check(address, 'ipv6') : list.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
  };
}

/**
 * Wraps a connection handler: sockets from trusted peers reach `next` once
 * their PROXY header is read (and only then); all others at once, untouched.
 */
export function proxyProtocolAcceptor(options: ProxyProtocolOptions, log: Logger, next: (socket: Socket) => void): (socket: Socket) => void {
  const trusts = trustedPeers(options.trusted);
  const timeoutMs = options.headerTimeoutMs ?? HEADER_TIMEOUT_MS;
  return (socket) => {
    // A connection reset before it was accepted has no peer address any more (getpeername fails): there is no client
    // to serve, count against a limit or log, and a trusted peer's must not pass as an untrusted one's.
    if (socket.remoteAddress === undefined) {
      socket.destroy();
      return;
    }
    if (!trusts(socket.remoteAddress)) {
      next(socket);
      return;
    }
    readHeader(socket, timeoutMs, (outcome) => {
      if (outcome.kind !== 'header') {
        // Spec 2.1: "abort the connection as soon as possible so that the sender gets a chance to notice the anomaly and log it".
        if (outcome.kind === 'error') log.warn({ peer: socket.remoteAddress, reason: outcome.reason }, 'PROXY protocol header refused, connection closed');
        socket.destroy();
        return;
      }
      if (outcome.source) proxied.set(socket, outcome.source.address);
      next(socket);
    });
  };
}

/**
 * The listener to bind for `server`: `server` itself when no peer is trusted,
 * else a net.Server that reads the header and hands the socket to `server`
 * with `emit('connection')`, as node documents for injecting connections.
 */
export function listenerFor(server: Server, options: ProxyProtocolOptions, log: Logger): Server {
  if (options.trusted.length === 0) return server;
  const listener = createServer(proxyProtocolAcceptor(options, log, (socket) => server.emit('connection', socket)));
  // node:http starts checking headersTimeout and requestTimeout when the server itself emits
  // 'listening' (setupConnectionsTracking); it never listens here, its front listener does.
  listener.on('listening', () => server.emit('listening'));
  return listener;
}

type Outcome = ProxyHeaderResult | { kind: 'gone' };

/**
 * Reads in paused mode ('readable' and read()), so no byte can be emitted to
 * nobody: once the header is complete, what followed it is unshifted and the
 * listener removed, and the stream is as the next owner expects a new one
 * (node:http and ssh2 add 'data' listeners; node:tls reads what is buffered).
 */
function readHeader(socket: Socket, timeoutMs: number, done: (outcome: Outcome) => void): void {
  let buffered: Buffer = Buffer.alloc(0);
  let finished = false;
  const finish = (outcome: Outcome, rest?: Buffer): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('readable', onReadable);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.off('error', onError);
    if (rest && rest.length > 0) socket.unshift(rest);
    done(outcome);
  };
  const onReadable = (): void => {
    let chunk: Buffer | null;
    while (!finished && (chunk = socket.read() as Buffer | null) !== null) {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const result = parseProxyHeader(buffered);
      if (result.kind === 'need-more') continue;
      finish(result, result.kind === 'header' ? buffered.subarray(result.length) : undefined);
    }
  };
  const onEnd = (): void => finish({ kind: 'error', reason: buffered.length === 0 ? 'closed before a PROXY header' : 'closed within its PROXY header' });
  const onError = (): void => finish({ kind: 'gone' });
  const timer = setTimeout(() => finish({ kind: 'error', reason: `no complete PROXY header within ${timeoutMs} ms` }), timeoutMs);
  socket.on('readable', onReadable);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
  socket.once('error', onError);
}
