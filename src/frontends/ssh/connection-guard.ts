import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type ssh2 from 'ssh2';
import type { ClientInfo, Connection } from 'ssh2';
import { clientAddress, proxyProtocolAcceptor, type ProxyProtocolOptions } from '../proxy-listener.js';
import { ConnectionLimiter, DISCONNECT, disconnectWithMessage, type Slot, type SshLimits } from './limits.js';

/** How long a connection refused over the per-address limit may take to reach the refusal message. */
const REFUSED_GRACE_MS = 2_000;

export interface GuardOptions extends SshLimits {
  /** Unauthenticated connections are closed after this long (sshd's LoginGraceTime). */
  loginGraceMs: number;
  /** Failed authentication attempts before the connection is closed (sshd's MaxAuthTries). */
  maxAuthTries: number;
  /** A connection without traffic in either direction for this long is closed. */
  idleTimeoutMs: number;
  /** A connection dropped or refused by a limit (for the githa_ssh_refused_total metric). */
  onRefused?: (limit: string) => void;
  /** listen.proxyProtocolFrom: connections from these peers start with a PROXY header (src/frontends/proxy-listener.ts). */
  proxyProtocol?: ProxyProtocolOptions;
}

/** What the authentication handler of one connection reports back. */
export interface ConnectionControls {
  /** A failed attempt; true when that was one too many and the connection is being closed (do not answer it). */
  authFailed(): boolean;
  authenticated(): void;
  /** The client's address: the PROXY header's when a trusted balancer sent one, else the TCP peer's. */
  readonly ip: string;
}

interface Pending {
  socket: Socket;
  ip: string;
  slot: Slot;
  refusal?: string;
  client?: Connection;
  authenticated: boolean;
  failures: number;
}

/**
 * Guards the SSH front end's TCP connections before and around ssh2: githa
 * listens with its own net.Server and hands each socket to ssh2 only after
 * the connection limits admitted it (ConnectionLimiter), so a client that
 * never sends a byte is counted too. Each socket gets a login grace timer and
 * an idle timeout; the ssh2 connection callback calls attach() to tie the
 * SSH connection to its socket (by the client's address and port, which are
 * unique among open connections). Behind a trusted load balancer the
 * socket reaches accept() only once its PROXY header is read, and every limit
 * and log line counts the address that header names (clientAddress).
 */
export class ConnectionGuard {
  readonly listener: NetServer;
  private readonly limiter: ConnectionLimiter;
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly ssh: ssh2.Server,
    private readonly options: GuardOptions,
    private readonly log: Logger,
  ) {
    this.limiter = new ConnectionLimiter(options);
    const accept = proxyProtocolAcceptor(options.proxyProtocol ?? { trusted: [] }, log, (socket) => this.accept(socket));
    this.listener = createServer({ pauseOnConnect: false }, accept);
  }

  private accept(socket: Socket): void {
    const ip = clientAddress(socket) ?? '?';
    const admission = this.limiter.admit(ip);
    if (admission.kind === 'drop') {
      this.log.warn({ ip, reason: admission.reason }, 'ssh connection dropped');
      this.options.onRefused?.(admission.limit);
      socket.destroy();
      return;
    }
    // The TCP peer's address and port: unique among open connections, and what ssh2 reports in attach().
    const id = `${socket.remoteAddress}:${socket.remotePort}`;
    const entry: Pending = { socket, ip, slot: admission.slot, refusal: admission.reason, authenticated: false, failures: 0 };
    this.pending.set(id, entry);
    // A refused connection is kept only to say why, right after the client's identification
    // line: one that does not send it soon does not hold a descriptor for loginGraceMs.
    if (admission.kind === 'refuse') setTimeout(() => socket.destroy(), REFUSED_GRACE_MS).unref();
    const grace = setTimeout(() => {
      if (entry.authenticated) return;
      this.log.info({ ip, ms: this.options.loginGraceMs }, 'ssh login grace time exceeded');
      this.close(entry, DISCONNECT.BY_APPLICATION, `githa: not authenticated within ${Math.round(this.options.loginGraceMs / 1000)} s`);
    }, this.options.loginGraceMs);
    // Node's socket timeout is re-armed by every read and write: data flowing
    // either way (a pack, git's keep-alives, SSH keep-alives) keeps it open.
    socket.setTimeout(this.options.idleTimeoutMs, () => {
      this.log.info({ ip, ms: this.options.idleTimeoutMs }, 'ssh connection idle, closed');
      this.close(entry, DISCONNECT.BY_APPLICATION, `githa: connection idle for ${Math.round(this.options.idleTimeoutMs / 1000)} s`);
    });
    socket.once('close', () => {
      clearTimeout(grace);
      // ssh2 silences what fails before the client's identification line (garbage, a port scan, a PROXY
      // header from an address not in listen.proxyProtocolFrom): logged here, as sshd logs a bad banner.
      if (!entry.client) this.log.info({ ip }, 'ssh connection closed before the SSH handshake');
      entry.slot.release();
      if (this.pending.get(id) === entry) this.pending.delete(id);
    });
    this.ssh.injectSocket(socket);
  }

  /**
   * Called from ssh2's connection callback (after the client's identification
   * line). Returns undefined when the connection is refused (it is being
   * closed with a message the client shows).
   */
  attach(client: Connection, info: ClientInfo): ConnectionControls | undefined {
    const entry = this.pending.get(`${info.ip}:${info.port}`);
    if (!entry) return { authFailed: () => false, authenticated: () => {}, ip: info.ip };
    const ip = entry.ip;
    entry.client = client;
    if (entry.refusal) {
      this.log.warn({ ip, reason: entry.refusal }, 'ssh connection refused');
      this.options.onRefused?.('client-connections');
      this.close(entry, DISCONNECT.TOO_MANY_CONNECTIONS, `githa: ${entry.refusal}`);
      return undefined;
    }
    return {
      ip,
      authFailed: () => {
        entry.failures++;
        if (entry.failures < this.options.maxAuthTries) return false;
        this.log.warn({ ip, failures: entry.failures }, 'ssh too many authentication failures');
        this.close(entry, DISCONNECT.NO_MORE_AUTH_METHODS_AVAILABLE, `githa: too many authentication failures (${entry.failures})`);
        return true;
      },
      authenticated: () => {
        entry.authenticated = true;
        entry.slot.authenticated();
      },
    };
  }

  /** Says why (when the SSH connection is up), then closes; the socket is destroyed if it lingers. */
  private close(entry: Pending, reason: number, message: string): void {
    if (entry.socket.destroyed) return;
    if (entry.client) disconnectWithMessage(entry.client, reason, message);
    else entry.socket.end();
    setTimeout(() => entry.socket.destroy(), 2_000).unref();
  }

  /** Connections open now (for tests and metrics). */
  snapshot(): ReturnType<ConnectionLimiter['snapshot']> {
    return this.limiter.snapshot();
  }
}
