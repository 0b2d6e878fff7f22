/**
 * Sessions and requests the SSH front end runs at once (docs/security.md#ssh,
 * "Sessions and requests"): sessions per connection (sshd's MaxSessions) and
 * Git requests per user across all connections of this githa, so one user
 * cannot take every backend channel githa has (src/backends/channel-pool.ts).
 * Pure bookkeeping; src/frontends/ssh/server.ts asks it.
 */
import type { Connection } from 'ssh2';

export interface SessionLimits {
  /** Session channels open at once on one connection [MaxSessions]. */
  maxSessions: number;
  /** Git requests (exec channels being served) of one user at once, all connections together. */
  maxRequestsPerUser: number;
}

export class SessionBudget {
  private readonly running = new Map<string, number>();

  constructor(private readonly limits: SessionLimits) {}

  /** A counter of one connection's sessions: take() is false when maxSessions are open. */
  connection(): { take(): boolean; release(): void } {
    let open = 0;
    return {
      take: () => {
        if (open >= this.limits.maxSessions) return false;
        open++;
        return true;
      },
      release: () => {
        if (open > 0) open--;
      },
    };
  }

  /** A request of `user`: its release (idempotent), or undefined when the user has maxRequestsPerUser running. */
  request(user: string): (() => void) | undefined {
    const now = this.running.get(user) ?? 0;
    if (now >= this.limits.maxRequestsPerUser) return undefined;
    this.running.set(user, now + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.running.get(user) ?? 1) - 1;
      if (left <= 0) this.running.delete(user);
      else this.running.set(user, left);
    };
  }
}

/** RFC 4254 §5.1 reason code. */
const ADMINISTRATIVELY_PROHIBITED = 1;

interface ProtocolWithOpenFail {
  channelOpenFail?: (recipient: number, reason: number, description?: string) => void;
}

/**
 * Refuses a channel open with a description (RFC 4254 §5.1), which OpenSSH
 * prints ("open failed: administratively prohibited: githa: …") and ssh2
 * puts in its error. ssh2 1.17's reject() sends an empty one, so its
 * protocol's channelOpenFail is given the text for that one call (as
 * disconnectWithMessage in limits.ts writes through ssh2 internals); if those
 * change, the plain reject() is sent.
 */
export function rejectChannel(client: Connection, reject: () => void, message: string): void {
  const proto = (client as unknown as { _protocol?: ProtocolWithOpenFail })._protocol;
  const original = proto?.channelOpenFail;
  if (!proto || typeof original !== 'function') {
    reject();
    return;
  }
  const text = message.replace(/[^\x20-\x7e]/g, '?').slice(0, 400);
  proto.channelOpenFail = (recipient: number) => original.call(proto, recipient, ADMINISTRATIVELY_PROHIBITED, text);
  try {
    reject();
  } finally {
    proto.channelOpenFail = original;
  }
}
