import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { SSH_ALGORITHMS, WEAK_ALGORITHMS, rsaHostKeyWarning } from '../../src/frontends/ssh/algorithms.js';
import { extInfoPayload, serverSigAlgs } from '../../src/frontends/ssh/ext-info.js';
import { ConnectionLimiter, earlyDrop, parseMaxStartups, type Slot } from '../../src/frontends/ssh/limits.js';
import { SessionBudget } from '../../src/frontends/ssh/sessions.js';

describe('ConnectionLimiter', () => {
  const limits = { maxConnections: 6, maxStartups: { start: 3, rate: 100, full: 3 }, maxStartupsPerClient: 2, maxConnectionsPerClient: 2 };

  it('refuses (with a reason) a client over its share, drops over the global limits, and frees slots on release', () => {
    const l = new ConnectionLimiter(limits);
    const a1 = l.admit('10.0.0.1');
    const a2 = l.admit('10.0.0.1');
    expect([a1.kind, a2.kind]).toEqual(['admit', 'admit']);
    // Both still unauthenticated: the address holds its share of handshakes: dropped.
    expect(l.admit('10.0.0.1')).toEqual({ kind: 'drop', reason: 'too many unauthenticated connections from this address (2)', limit: 'client-startups' });
    if (a1.kind === 'drop' || a2.kind === 'drop') throw new Error('unreachable');
    a1.slot.authenticated();
    a2.slot.authenticated();
    const third = l.admit('10.0.0.1');
    expect(third.kind).toBe('refuse');
    expect(third.reason).toBe('too many connections from 10.0.0.1 (at most 2); close some and try again');
    // Other addresses are not affected, up to maxStartups handshakes at once.
    const b = [l.admit('10.0.0.2'), l.admit('10.0.0.3')];
    expect(b.map((x) => x.kind)).toEqual(['admit', 'admit']);
    expect(l.admit('10.0.0.4')).toEqual({ kind: 'drop', reason: 'too many unauthenticated connections (3; maxStartups 3:100:3)', limit: 'startups' });
    if (third.kind !== 'drop') third.slot.release();
    for (const x of b) if (x.kind !== 'drop') x.slot.authenticated();
    expect([l.admit('10.0.0.4').kind, l.admit('10.0.0.5').kind]).toEqual(['admit', 'admit']);
    expect(l.admit('10.0.0.6')).toEqual({ kind: 'drop', reason: 'server full (6 connections)', limit: 'connections' });
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
          expect(snap.startups).toBeLessThanOrEqual(limits.maxStartups.full);
        }
      }),
    );
  });
});

describe('random early drop (ssh.maxStartups start:rate:full)', () => {
  it('parses sshd\'s forms', () => {
    expect(parseMaxStartups(100)).toEqual({ start: 100, rate: 100, full: 100 });
    expect(parseMaxStartups('10:30:100')).toEqual({ start: 10, rate: 30, full: 100 });
    for (const bad of ['10:30', '10:101:100', '100:30:10', '0:30:10', 'a:b:c', '10:30:100:1', 0, 1.5]) expect(parseMaxStartups(bad), String(bad)).toBeUndefined();
  });

  it('drops none below start, rate% at start, rising linearly to all at full (as sshd drop_connection)', () => {
    const limit = { start: 10, rate: 30, full: 100 };
    // random() in [0, 1): a connection is dropped when random()*100 < the percentage.
    expect(earlyDrop(limit, 9, () => 0)).toBe(false);
    expect(earlyDrop(limit, 10, () => 0.299)).toBe(true);
    expect(earlyDrop(limit, 10, () => 0.3)).toBe(false);
    expect(earlyDrop(limit, 55, () => 0.649)).toBe(true); // 30 + 70 * 45/90 = 65
    expect(earlyDrop(limit, 55, () => 0.651)).toBe(false);
    expect(earlyDrop(limit, 100, () => 0.999)).toBe(true);
    expect(earlyDrop({ start: 5, rate: 30, full: 5 }, 5, () => 0.999)).toBe(true);
  });

  it('two addresses holding idle handshakes at their cap leave room for everybody else', () => {
    const l = new ConnectionLimiter({ maxConnections: 1000, maxStartups: { start: 10, rate: 30, full: 100 }, maxStartupsPerClient: 5, maxConnectionsPerClient: 50 }, () => 0);
    for (const ip of ['10.0.0.1', '10.0.0.2']) {
      const kinds = Array.from({ length: 50 }, () => l.admit(ip).kind);
      expect(kinds.filter((k) => k === 'admit')).toHaveLength(5);
    }
    // 10 unauthenticated: from here on, early drop applies (random() = 0 drops); below it, none.
    expect(l.admit('10.0.0.3')).toMatchObject({ kind: 'drop', limit: 'startups' });
    const l2 = new ConnectionLimiter({ maxConnections: 1000, maxStartups: { start: 11, rate: 30, full: 100 }, maxStartupsPerClient: 5, maxConnectionsPerClient: 50 }, () => 0);
    for (const ip of ['10.0.0.1', '10.0.0.2']) for (let i = 0; i < 50; i++) l2.admit(ip);
    expect(l2.admit('10.0.0.3').kind).toBe('admit');
  });
});

describe('SessionBudget', () => {
  it('counts sessions per connection and requests per user', () => {
    const b = new SessionBudget({ maxSessions: 2, maxRequestsPerUser: 3 });
    const c1 = b.connection();
    const c2 = b.connection();
    expect([c1.take(), c1.take(), c1.take(), c2.take()]).toEqual([true, true, false, true]);
    c1.release();
    expect(c1.take()).toBe(true);
    const done = [b.request('ann'), b.request('ann'), b.request('ann')];
    expect(b.request('ann')).toBeUndefined();
    expect(b.request('bob')).toBeDefined();
    done[0]!();
    done[0]!(); // idempotent
    expect(b.request('ann')).toBeDefined();
    expect(b.request('ann')).toBeUndefined();
  });
});

describe('server-sig-algs', () => {
  it('is a comma-separated list without ssh-rsa or ssh-dss unless allowed', () => {
    expect(serverSigAlgs(false).join(',')).toBe('ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256');
    expect(serverSigAlgs(true)).toContain('ssh-rsa');
    expect(serverSigAlgs(true)).not.toContain('ssh-dss');
    const p = extInfoPayload(['a', 'b']);
    // byte 7, uint32 1, string "server-sig-algs", string "a,b" (RFC 8308 §2.3).
    expect(p[0]).toBe(7);
    expect(p.readUInt32BE(1)).toBe(1);
    expect(p.subarray(9, 9 + p.readUInt32BE(5)).toString()).toBe('server-sig-algs');
    expect(p.subarray(28).toString()).toBe('a,b');
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
      maxStartups: '32:30:100',
      maxStartupsPerClient: 8,
      maxSessions: 10,
      maxRequestsPerUser: 20,
      allowSshRsaSignatures: false,
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
    [{ hostKeys: ['/k'], authorizedKeys: '/a', maxStartups: '10:30' }, 'ssh.maxStartups: expected a number or "start:rate:full"'],
    [{ hostKeys: ['/k'], authorizedKeys: '/a', maxSessions: 0 }, 'ssh.maxSessions'],
  ])('refuses %j', (ssh, message) => {
    expect(() => buildConfig({ ...base, ssh }, {})).toThrow(message);
  });
});
