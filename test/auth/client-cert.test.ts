import { describe, expect, it } from 'vitest';
import { certificateUser } from '../../src/auth/client-cert.js';
import { buildConfig } from '../../src/config/load.js';

describe('certificateUser (client certificate → githa user)', () => {
  const cert = (CN?: string | string[]) => ({ subject: CN === undefined ? { O: 'githa' } : { CN, O: 'githa' } });

  it('a verified certificate is its subject CN', () => {
    expect(certificateUser(cert('alice'), true)).toBe('alice');
  });

  it('an unverified certificate is nobody, whatever it says', () => {
    expect(certificateUser(cert('alice'), false)).toBeUndefined();
    expect(certificateUser(cert('alice'), false, { alice: 'alice' })).toBeUndefined();
  });

  it.each([
    ['no certificate', undefined],
    ['an empty one (node gives {} when the client sent none)', {}],
    ['no CN', cert()],
    ['two CNs', cert(['alice', 'bob'])],
    ['a CN that is no user name', cert('Alice Example')],
    ['an empty CN', cert('')],
  ])('%s is nobody', (_what, c) => {
    expect(certificateUser(c as never, true)).toBeUndefined();
  });

  it('tls.clientUsers maps CNs to users, and a CN it does not list is nobody', () => {
    const users = { 'Alice Example': 'alice', 'ci.example.org': 'ci-bot' };
    expect(certificateUser(cert('Alice Example'), true, users)).toBe('alice');
    expect(certificateUser(cert('ci.example.org'), true, users)).toBe('ci-bot');
    expect(certificateUser(cert('alice'), true, users)).toBeUndefined();
    // Names of Object.prototype are no CNs of the map.
    expect(certificateUser(cert('constructor'), true, users)).toBeUndefined();
  });
});

describe('tls configuration', () => {
  const backends = [{ id: 'b1', http: 'http://10.0.0.1:8080/git' }];

  it('listen.https with tls: modern defaults, client certificates off', () => {
    const c = buildConfig({ backends, listen: { https: ':8443' }, tls: { cert: '/etc/githa/tls.crt', key: '/etc/githa/tls.key' } }, {});
    expect(c.listen.https).toBe(':8443');
    expect(c.tls).toEqual({ cert: '/etc/githa/tls.crt', key: '/etc/githa/tls.key', minVersion: 'TLSv1.2', clientCertificates: 'off' });
  });

  it.each([
    [{ listen: { https: ':8443' } }, 'tls: listen.https needs tls.cert and tls.key'],
    [{ tls: { cert: '/c' } }, 'tls.key'],
    [{ tls: { cert: '/c', key: '/k', minVersion: 'TLSv1.1' } }, 'tls.minVersion'],
    [{ tls: { cert: '/c', key: '/k', clientCertificates: 'optional' } }, 'tls.clientCa: tls.clientCertificates optional or require needs tls.clientCa'],
    [{ tls: { cert: '/c', key: '/k', clientCertificates: 'sometimes', clientCa: '/ca' } }, 'tls.clientCertificates'],
    [{ tls: { cert: '/c', key: '/k', clientUsers: { 'Alice Example': 'Alice Example' } } }, 'tls.clientUsers.Alice Example'],
    [{ tls: { cert: '/c', key: '/k', ciphers: 'ALL' } }, 'ciphers'],
  ])('refuses %j', (extra, message) => {
    expect(() => buildConfig({ backends, ...extra }, {})).toThrow(message);
  });
});
