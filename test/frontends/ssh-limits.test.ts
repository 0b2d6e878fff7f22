import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { SSH_ALGORITHMS, WEAK_ALGORITHMS, rsaHostKeyWarning } from '../../src/frontends/ssh/algorithms.js';
import { ConnectionLimiter, type Slot } from '../../src/frontends/ssh/limits.js';

describe('ConnectionLimiter', () => {
  const limits = { maxConnections: 6, maxStartups: 3, maxConnectionsPerClient: 2 };

  it('refuses (with a reason) a client over its share, drops over the global limits, and frees slots on release', () => {
    const l = new ConnectionLimiter(limits);
    const a1 = l.admit('10.0.0.1');
    const a2 = l.admit('10.0.0.1');
    expect([a1.kind, a2.kind]).toEqual(['admit', 'admit']);
    // Both still unauthenticated: the address holds its share of handshakes: dropped.
    expect(l.admit('10.0.0.1')).toEqual({ kind: 'drop', reason: 'too many unauthenticated connections from this address (2)' });
    if (a1.kind === 'drop' || a2.kind === 'drop') throw new Error('unreachable');
    a1.slot.authenticated();
    a2.slot.authenticated();
    const third = l.admit('10.0.0.1');
    expect(third.kind).toBe('refuse');
    expect(third.reason).toBe('too many connections from 10.0.0.1 (at most 2); close some and try again');
    // Other addresses are not affected, up to maxStartups handshakes at once.
    const b = [l.admit('10.0.0.2'), l.admit('10.0.0.3')];
    expect(b.map((x) => x.kind)).toEqual(['admit', 'admit']);
    expect(l.admit('10.0.0.4')).toEqual({ kind: 'drop', reason: 'too many unauthenticated connections (3)' });
    if (third.kind !== 'drop') third.slot.release();
    for (const x of b) if (x.kind !== 'drop') x.slot.authenticated();
    expect([l.admit('10.0.0.4').kind, l.admit('10.0.0.5').kind]).toEqual(['admit', 'admit']);
    expect(l.admit('10.0.0.6')).toEqual({ kind: 'drop', reason: 'server full (6 connections)' });
    a1.slot.release();
    a1.slot.release(); // idempotent
    expect(l.snapshot()).toEqual({ total: 5, startups: 2, clients: 5 });
    expect(l.admit('10.0.0.1').kind).toBe('admit');
  });

  it('never counts below zero or above the limits, whatever the order of events', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('admit' as const), ip: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ t: fc.constantFrom('auth' as const, 'release' as const), i: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const l = new ConnectionLimiter(limits);
        const slots: Array<{ ip: string; slot: Slot; open: boolean; starting: boolean }> = [];
        for (const o of ops) {
          if (o.t === 'admit') {
            const ip = `10.0.0.${o.ip}`;
            const a = l.admit(ip);
            if (a.kind !== 'drop') slots.push({ ip, slot: a.slot, open: true, starting: true });
          } else if (slots.length > 0) {
            const s = slots[o.i % slots.length]!;
            if (o.t === 'auth') {
              s.slot.authenticated();
              if (s.open) s.starting = false;
            } else {
              s.slot.release();
              s.open = false;
              s.starting = false;
            }
          }
          const open = slots.filter((s) => s.open);
          const snap = l.snapshot();
          expect(snap.total).toBe(open.length);
          expect(snap.startups).toBe(open.filter((s) => s.starting).length);
          expect(snap.clients).toBe(new Set(open.map((s) => s.ip)).size);
          expect(snap.total).toBeLessThanOrEqual(limits.maxConnections);
          expect(snap.startups).toBeLessThanOrEqual(limits.maxStartups);
        }
      }),
    );
  });
});

describe('SSH algorithms', () => {
  it('offer none of the weak algorithms', () => {
    for (const kind of Object.keys(WEAK_ALGORITHMS) as Array<keyof typeof WEAK_ALGORITHMS>) {
      for (const name of WEAK_ALGORITHMS[kind]) expect(SSH_ALGORITHMS[kind] as readonly string[]).not.toContain(name);
    }
    expect(SSH_ALGORITHMS.kex.some((k) => /sha1/.test(k))).toBe(false);
    expect(SSH_ALGORITHMS.cipher.some((c) => /cbc|arcfour/.test(c))).toBe(false);
    expect(SSH_ALGORITHMS.hmac.some((m) => /sha1|md5/.test(m))).toBe(false);
  });

  it('warn about RSA host keys only', () => {
    expect(rsaHostKeyWarning([{ type: 'ssh-ed25519' }])).toBeUndefined();
    expect(rsaHostKeyWarning([{ type: 'ssh-ed25519' }, { type: 'ssh-rsa' }])).toMatch(/ssh-rsa \(SHA-1\)/);
  });
});

describe('ssh configuration', () => {
  const base = { backends: [{ id: 'b1', http: 'http://x/' }], listen: { ssh: '127.0.0.1:2222' } };

  it('has hardening defaults', () => {
    const c = buildConfig({ ...base, ssh: { hostKeys: ['/k'], authorizedKeys: '/a' } }, {});
    expect(c.ssh).toMatchObject({
      maxConnections: 1000,
      maxStartups: 100,
      maxConnectionsPerClient: 50,
      loginGraceMs: 60_000,
      maxAuthTries: 6,
      idleTimeoutMs: 600_000,
      authorizedKeysCommandTimeoutMs: 5000,
      authorizedKeysCommandMaxBytes: 1024 * 1024,
      authorizedKeysCommandCacheMs: 10_000,
    });
  });

  it('accepts listen.ssh with an authorizedKeysCommand and no file', () => {
    const c = buildConfig({ ...base, ssh: { hostKeys: ['/k'], authorizedKeysCommand: ['/usr/local/bin/keys', '%u', '%f'] } }, {});
    expect(c.ssh.authorizedKeysCommand).toEqual(['/usr/local/bin/keys', '%u', '%f']);
  });

  it.each([
    [{ hostKeys: ['/k'] }, 'listen.ssh needs ssh.hostKeys and ssh.authorizedKeys or ssh.authorizedKeysCommand'],
    [{ hostKeys: ['/k'], authorizedKeysCommand: ['keys', '%u'] }, 'ssh.authorizedKeysCommand: the program must be an absolute path'],
    [{ hostKeys: ['/k'], authorizedKeysCommand: [] }, 'ssh.authorizedKeysCommand'],
    [{ hostKeys: ['/k'], authorizedKeys: '/a', maxAuthTries: 0 }, 'ssh.maxAuthTries'],
    [{ hostKeys: ['/k'], authorizedKeys: '/a', idleTimeoutMs: -1 }, 'ssh.idleTimeoutMs'],
  ])('refuses %j', (ssh, message) => {
    expect(() => buildConfig({ ...base, ssh }, {})).toThrow(message);
  });
});
