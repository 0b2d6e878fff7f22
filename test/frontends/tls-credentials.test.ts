import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TlsCredentials } from '../../src/frontends/http/tls-credentials.js';
import { ConfigError } from '../../src/errors.js';
import { TestCa, type IssuedCert } from '../support/tls.js';

describe('TlsCredentials (tls.cert / tls.key re-read when they change)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'githa-tls-'));
  let ca: TestCa;
  let one: IssuedCert;
  let two: IssuedCert;
  beforeAll(async () => {
    ca = await TestCa.create(dir);
    one = await ca.issue('one', { cn: 'localhost', server: true });
    two = await ca.issue('two', { cn: 'localhost', server: true });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const serial = (pem: unknown): string => new X509Certificate(String(pem)).serialNumber;
  const files = (name: string) => {
    const paths = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    copyFileSync(one.cert, paths.cert);
    copyFileSync(one.key, paths.key);
    return paths;
  };
  const config = (p: { cert: string; key: string }) => ({ ...p, minVersion: 'TLSv1.2' as const, clientCertificates: 'off' as const });

  it('pins TLS 1.2 and AEAD suites, honours its own order', () => {
    const creds = new TlsCredentials(config(files('defaults')), () => {});
    expect(creds.options()).toMatchObject({ minVersion: 'TLSv1.2', honorCipherOrder: true });
    expect(String(creds.options().ciphers)).not.toMatch(/CBC|SHA:|-SHA$|RC4|3DES|aNULL/);
  });

  it('a changed pair is used; a pair that does not load keeps the last good one and is reported', () => {
    const p = files('reload');
    const problems: string[] = [];
    const creds = new TlsCredentials(config(p), (m) => problems.push(m));
    expect(creds.refresh()).toBeUndefined();
    expect(serial(creds.options().cert)).toBe(one.serial);
    copyFileSync(two.cert, p.cert);
    expect(creds.refresh()).toBeUndefined();
    expect(serial(creds.options().cert)).toBe(one.serial);
    expect(problems.join('\n')).toMatch(/key values mismatch.*previous certificate/);
    copyFileSync(two.key, p.key);
    expect(serial(creds.refresh()?.cert)).toBe(two.serial);
    rmSync(p.key);
    expect(creds.refresh()).toBeUndefined();
    expect(serial(creds.options().cert)).toBe(two.serial);
    writeFileSync(p.key, 'not a key\n');
    expect(creds.refresh()).toBeUndefined();
    expect(serial(creds.options().cert)).toBe(two.serial);
  });

  it('a pair that does not load at start is a ConfigError', () => {
    const p = files('start');
    copyFileSync(two.key, p.key);
    expect(() => new TlsCredentials(config(p), () => {})).toThrow(ConfigError);
    expect(() => new TlsCredentials(config({ cert: p.cert, key: join(dir, 'missing.key') }), () => {})).toThrow(/missing\.key/);
  });
});
