import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConfig, loadConfig, parseListen } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { ConfigError } from '../../src/errors.js';

const minimal = { backends: [{ id: 'b1', http: 'http://10.0.0.1:8080/git' }] };

describe('buildConfig', () => {
  it('fills every default and normalises backend URLs', () => {
    const c = buildConfig(minimal, {});
    expect(c.listen).toEqual(DEFAULTS.listen);
    expect(c.redis.prefix).toBe('githa:');
    expect(c.locks.leaseMs).toBe(DEFAULTS.locks.leaseMs);
    expect(c.backends[0]).toMatchObject({ id: 'b1', http: 'http://10.0.0.1:8080/git/', enabled: true, writable: true });
    expect(c.proxyId).toMatch(/:\d+$/);
  });

  it('is frozen all the way down', () => {
    const c = buildConfig(minimal, {});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.backends[0])).toBe(true);
    expect(() => {
      (c.redis as { url: string }).url = 'x';
    }).toThrow();
  });

  it('lets GITHA_REDIS_URL override the file', () => {
    expect(buildConfig(minimal, { GITHA_REDIS_URL: 'redis://r:1' }).redis.url).toBe('redis://r:1');
  });

  it.each([
    [{ backends: [] }, 'backends: at least one backend is required'],
    [{ backends: [{ id: 'b1' }] }, 'backends.0: a backend needs at least one endpoint'],
    [{ backends: [{ id: 'b1', http: 'ftp://x/' }] }, 'backends.0.http: expected an http:// or https:// URL'],
    [{ ...minimal, bogus: 1 }, 'bogus'],
    [{ ...minimal, redis: { url: 'http://x' } }, 'redis.url: expected a redis:// URL'],
    [{ backends: [{ id: 'b 1', http: 'http://x/' }] }, 'backends.0.id'],
    [{ backends: [{ id: 'b1', http: 'http://x/' }, { id: 'b1', http: 'http://y/' }] }, 'backend ids must be unique'],
    [{ ...minimal, locks: { leaseMs: -1 } }, 'locks.leaseMs'],
    [{ ...minimal, listen: { ssh: '0.0.0.0:2222' } }, 'ssh: listen.ssh needs ssh.hostKeys and ssh.authorizedKeys'],
    [{ backends: [{ id: 'b1', ssh: 'ssh://git@h/srv/git' }] }, 'backends.0.ssh: SSH backends need ssh.backendKey and ssh.backendKnownHosts'],
    [{ backends: [{ id: 'b1', ssh: 'ssh://h' }], ssh: { backendKey: 'k', backendKnownHosts: 'kh' } }, 'backends.0.ssh: expected ssh://user@host[:port]/path'],
    [{ backends: [{ id: 'b1', git: 'http://h/' }] }, 'backends.0.git: expected git://host[:port][/path]'],
  ])('names the bad key: %j', (input, message) => {
    expect(() => buildConfig(input, {})).toThrow(ConfigError);
    expect(() => buildConfig(input, {})).toThrow(message);
  });
});

it('accepts SSH and git:// front ends and backends', () => {
  const c = buildConfig(
    {
      listen: { ssh: '0.0.0.0:2222', git: ':9418' },
      ssh: { hostKeys: ['/k'], authorizedKeys: '/a', backendKey: '/b', backendKnownHosts: '/kh' },
      backends: [{ id: 'b1', ssh: 'ssh://git@10.0.0.1:22/srv/git', git: 'git://10.0.0.1:9418' }],
    },
    {},
  );
  expect(c.listen.ssh).toBe('0.0.0.0:2222');
  expect(c.gitDaemon.allowPush).toBe(false);
});

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'githa-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads YAML from the file named by GITHA_CONFIG before --config', () => {
    const a = join(dir, 'a.yaml');
    const b = join(dir, 'b.yaml');
    writeFileSync(a, 'backends:\n  - { id: a, http: "http://a/" }\n');
    writeFileSync(b, 'backends:\n  - { id: b, http: "http://b/" }\n');
    expect(loadConfig(a, {}).backends[0]?.id).toBe('a');
    expect(loadConfig(a, { GITHA_CONFIG: b }).backends[0]?.id).toBe('b');
  });

  it('says clearly what is wrong with the file', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'backends: [ {');
    expect(() => loadConfig(bad, {})).toThrow(/not valid YAML/);
    expect(() => loadConfig(join(dir, 'missing.yaml'), {})).toThrow(/cannot read configuration/);
    expect(() => loadConfig(undefined, {})).toThrow(/--config FILE or set GITHA_CONFIG/);
  });
});

describe('parseListen', () => {
  it.each([
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    [':22', { host: '0.0.0.0', port: 22 }],
    ['[::1]:9418', { host: '::1', port: 9418 }],
  ])('%s', (input, expected) => {
    expect(parseListen(input)).toEqual(expected);
  });
});

describe('replication and interruption settings', () => {
  const backends = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `b${i + 1}`, http: `http://127.0.0.1:${9000 + i}/` }));

  it('defaults the write quorum to a majority of the configured backends', () => {
    expect([1, 2, 3, 4, 5].map((n) => buildConfig({ backends: backends(n) }, {}).replication.writeQuorum)).toEqual([1, 2, 2, 3, 3]);
  });

  it('refuses a write quorum above the number of backends, naming the key', () => {
    expect(() => buildConfig({ backends: backends(2), replication: { writeQuorum: 3 } }, {})).toThrow(/replication\.writeQuorum: cannot exceed the number of backends \(2\)/);
    expect(() => buildConfig({ backends: backends(2), replication: { writeQuorum: 0 } }, {})).toThrow(/replication\.writeQuorum/);
  });

  it('takes onInterruptedWrite at the top level or under interruptions, and nothing else', () => {
    expect(buildConfig({ backends: backends(1) }, {}).interruptions.onInterruptedWrite).toBe('adopt');
    expect(buildConfig({ backends: backends(1), onInterruptedWrite: 'freeze' }, {}).interruptions.onInterruptedWrite).toBe('freeze');
    expect(buildConfig({ backends: backends(1), interruptions: { onInterruptedWrite: 'freeze' } }, {}).interruptions.onInterruptedWrite).toBe('freeze');
    expect(() => buildConfig({ backends: backends(1), onInterruptedWrite: 'ignore' }, {})).toThrow(/onInterruptedWrite/);
  });
});

describe('pushLog.maxLength', () => {
  const backends = [{ id: 'b1', http: 'http://127.0.0.1:9000/' }];
  it('defaults to 10000 entries and takes a positive integer', () => {
    expect(buildConfig({ backends }, {}).pushLog.maxLength).toBe(10_000);
    expect(buildConfig({ backends, pushLog: { maxLength: 500 } }, {}).pushLog.maxLength).toBe(500);
    expect(() => buildConfig({ backends, pushLog: { maxLength: 0 } }, {})).toThrow(/pushLog\.maxLength/);
  });
});
