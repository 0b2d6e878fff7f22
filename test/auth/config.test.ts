import { describe, expect, it } from 'vitest';
import { AccessPolicy } from '../../src/auth/access.js';
import { buildConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const minimal = { backends: [{ id: 'b1', http: 'http://10.0.0.1:8080/git' }] };

describe('auth and access configuration', () => {
  it('defaults keep today\'s behaviour: passthrough, no access rules, everything allowed', () => {
    const c = buildConfig(minimal, {});
    expect(c.auth).toEqual({ anonymousUser: 'anonymous', groups: {}, http: {
        mode: 'passthrough',
        realm: 'githa',
        cacheMs: 60_000,
        verifyWorkers: 2,
        verifyQueue: 64,
        failureWindowMs: 60_000,
        maxFailuresPerAddress: 20,
        maxFailuresPerUser: 10,
      },
    });
    expect(c.access).toBeUndefined();
    const p = AccessPolicy.compile(c.access, c.auth.groups, c.auth.anonymousUser);
    expect(p.decide(p.anonymous(), 'any.git')).toBe('write');
  });

  it('an access section without a default refuses what no rule grants', () => {
    const c = buildConfig({ ...minimal, access: { rules: [{ repos: 'team/*', groups: ['devs'], access: 'write' }] }, auth: { groups: { devs: ['alice'] } } }, {});
    expect(c.access?.default).toBe('none');
    const p = AccessPolicy.compile(c.access, c.auth.groups);
    expect(p.decide(p.identify('alice', true), 'team/app.git')).toBe('write');
    expect(p.decide(p.identify('bob', true), 'team/app.git')).toBe('none');
  });

  it.each([
    [{ auth: { http: { mode: 'githa' } } }, /auth\.http\.usersFile/],
    [{ auth: { http: { realm: 'a"b' } } }, /auth\.http\.realm/],
    [{ auth: { http: { userHeader: 'Authorization' } } }, /auth\.http\.userHeader/],
    [{ auth: { http: { userHeader: 'X Remote' } } }, /auth\.http\.userHeader/],
    [{ auth: { groups: { devs: ['bad name'] } } }, /auth\.groups/],
    [{ access: { rules: [{ repos: '/abs/*', access: 'read' }] } }, /access\.rules\.0\.repos/],
    [{ access: { rules: [{ repos: 'a/*', access: 'admin' }] } }, /access\.rules\.0\.access/],
    [{ access: { rules: [{ repos: 'a/*', access: 'read', user: ['x'] }] } }, /access\.rules\.0/],
  ])('refuses %j', (extra, message) => {
    expect(() => buildConfig({ ...minimal, ...extra }, {})).toThrow(ConfigError);
    expect(() => buildConfig({ ...minimal, ...extra }, {})).toThrow(message);
  });
});
