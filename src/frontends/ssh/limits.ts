import type { Connection } from 'ssh2';
import type { StartupLimit } from '../../config/max-startups.js';

export { parseMaxStartups, type StartupLimit } from '../../config/max-startups.js';

/**
 * Whether random early drop refuses a new connection with `startups`
 * unauthenticated ones open: as sshd's drop_connection(), a probability of
 * `rate`% at `start` rising linearly to 100% at `full`. `random()` is in [0, 1).
 */
export function earlyDrop(limit: StartupLimit, startups: number, random: () => number): boolean {
  if (startups >= limit.full) return true;
  if (startups < limit.start) return false;
  const percent = limit.rate + ((100 - limit.rate) * (startups - limit.start)) / (limit.full - limit.start);
  return random() * 100 < percent;
}

export interface SshLimits {
  /** Connections at once, all clients together; more are closed at once. */
  maxConnections: number;
  /** Unauthenticated connections at once (sshd's MaxStartups start:rate:full, random early drop). */
  maxStartups: StartupLimit;
  /** Unauthenticated connections at once from one source address; more are closed at once. */
  maxStartupsPerClient: number;
  /** Connections at once from one source address; more are refused with a message. */
  maxConnectionsPerClient: number;
}

/**
 * What to do with a new TCP connection:
 * - `drop`: close it before the SSH handshake. Used where a message would cost
 *   more than the connection is worth (the server is full; too many
 *   handshakes in progress), as sshd does for MaxStartups.
 * - `refuse`: do the handshake only to tell the client why (one client holds
 *   too many connections); the client sees the text, see disconnectWithMessage.
 * - `admit`.
 * Every verdict but `drop` holds a slot until release() is called.
 */
export type Admission =
  | { kind: 'drop'; reason: string; limit: 'connections' | 'startups' | 'client-startups' }
  | { kind: 'refuse' | 'admit'; reason?: string; slot: Slot };

export interface Slot {
  /** The connection authenticated: it no longer counts as a start-up. */
  authenticated(): void;
  /** The connection closed (idempotent). */
  release(): void;
}

/**
 * Connection accounting of the SSH front end, per source address and in
 * total. Pure bookkeeping (no sockets): src/frontends/ssh/server.ts asks it
 * on every accepted TCP connection, before the client has sent a byte.
 * `random` is injected for the tests of random early drop.
 */
export class ConnectionLimiter {
  private total = 0;
  private startups = 0;
  private readonly perClient = new Map<string, { open: number; startups: number }>();

  constructor(
    private readonly limits: SshLimits,
    private readonly random: () => number = Math.random,
  ) {}

  admit(ip: string): Admission {
    const client = this.perClient.get(ip) ?? { open: 0, startups: 0 };
    if (this.total >= this.limits.maxConnections) return { kind: 'drop', reason: `server full (${this.limits.maxConnections} connections)`, limit: 'connections' };
    // One address cannot hold more handshakes than its share, far below maxStartups,
    // so a few addresses with idle connections cannot keep everybody else out.
    if (client.startups >= this.limits.maxStartupsPerClient) {
      return { kind: 'drop', reason: `too many unauthenticated connections from this address (${this.limits.maxStartupsPerClient})`, limit: 'client-startups' };
    }
    if (earlyDrop(this.limits.maxStartups, this.startups, this.random)) {
      const { start, rate, full } = this.limits.maxStartups;
      return { kind: 'drop', reason: `too many unauthenticated connections (${this.startups}; maxStartups ${start}:${rate}:${full})`, limit: 'startups' };
    }
    const over = client.open >= this.limits.maxConnectionsPerClient;
    client.open++;
    client.startups++;
    this.perClient.set(ip, client);
    this.total++;
    this.startups++;
    let starting = true;
    let open = true;
    const endStartup = (): void => {
      if (!starting) return;
      starting = false;
      client.startups--;
      this.startups--;
    };
    const slot: Slot = {
      authenticated: endStartup,
      release: () => {
        if (!open) return;
        open = false;
        endStartup();
        client.open--;
        this.total--;
        if (client.open === 0) this.perClient.delete(ip);
      },
    };
    if (over) return { kind: 'refuse', reason: `too many connections from ${ip} (at most ${this.limits.maxConnectionsPerClient}); close some and try again`, slot };
    return { kind: 'admit', slot };
  }

  /** For tests and metrics: connections open in total, still starting, and per address. */
  snapshot(): { total: number; startups: number; clients: number } {
    return { total: this.total, startups: this.startups, clients: this.perClient.size };
  }
}

/** RFC 4253 §11.1 disconnect reason codes used here. */
export const DISCONNECT = {
  PROTOCOL_ERROR: 2,
  BY_APPLICATION: 11,
  TOO_MANY_CONNECTIONS: 12,
  NO_MORE_AUTH_METHODS_AVAILABLE: 14,
} as const;

interface ProtocolInternals {
  _packetRW?: {
    write?: {
      allocStartKEX: number;
      alloc(size: number, force: boolean): Buffer;
      finalize(packet: Buffer, force: boolean): Buffer;
    };
  };
  _cipher?: { encrypt(packet: Buffer): void };
}

/**
 * Sends SSH_MSG_DISCONNECT with a description (RFC 4253 §11.1) and closes the
 * connection. OpenSSH prints the description: "Received disconnect from
 * 127.0.0.1 port 2222:12: githa: too many connections…", which is the only
 * way to explain a refusal to a client that has not (or will not) open a
 * session. ssh2 1.17's own disconnect() always sends an empty description, so
 * this writes the packet the same way it does (its packet writer, bypassing
 * the queue, as allowed at any time, even mid key exchange), through ssh2
 * internals; if those ever change, it falls back to ssh2's plain end().
 */
export function disconnectWithMessage(client: Connection, reason: number, message: string): void {
  const internals = client as unknown as { _protocol?: ProtocolInternals; _sock?: { end(): void; destroy(): void; writable?: boolean } };
  const proto = internals._protocol;
  const writer = proto?._packetRW?.write;
  const sock = internals._sock;
  if (!proto || !writer || !proto._cipher || !sock || typeof writer.alloc !== 'function') {
    client.end();
    return;
  }
  if (sock.writable === false) return;
  // Printable ASCII only, bounded: OpenSSH shows at most 400 characters.
  const text = Buffer.from(message.replace(/[^\x20-\x7e]/g, '?').slice(0, 400), 'ascii');
  const size = 1 + 4 + 4 + text.length + 4;
  const start = writer.allocStartKEX;
  const packet = writer.alloc(size, true);
  packet[start] = 1; // SSH_MSG_DISCONNECT
  packet.writeUInt32BE(reason, start + 1);
  packet.writeUInt32BE(text.length, start + 5);
  text.copy(packet, start + 9);
  packet.writeUInt32BE(0, start + 9 + text.length); // language tag: empty
  proto._cipher.encrypt(writer.finalize(packet, true));
  sock.end();
}
