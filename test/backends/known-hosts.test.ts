import { createHmac, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  blobKeyType,
  hostFieldMatches,
  hostKeyAlgorithms,
  keyFingerprint,
  knownHostName,
  matchPattern,
  parseKnownHosts,
  verifyHostKey,
} from '../../src/backends/known-hosts.js';

/** An ssh-ed25519 public key blob (SSH wire format) for a fresh key. */
function ed25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
}

const KEY_A = ed25519Blob();
const KEY_B = ed25519Blob();
const line = (hosts: string, key: Buffer, type = 'ssh-ed25519'): string => `${hosts} ${type} ${key.toString('base64')}`;

function hashed(name: string, salt = Buffer.from('0123456789abcdefghij')): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('knownHostName', () => {
  it('is the bare host on port 22 and [host]:port otherwise, lower-cased', () => {
    expect(knownHostName('Git.Example.COM', 22)).toBe('git.example.com');
    expect(knownHostName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
    expect(knownHostName('::1', 2222)).toBe('[::1]:2222');
    expect(knownHostName('[::1]', 22)).toBe('::1');
  });
});

describe('host patterns', () => {
  it('matches wildcards like OpenSSH', () => {
    expect(matchPattern('git1.example.com', '*.example.com')).toBe(true);
    expect(matchPattern('example.com', '*.example.com')).toBe(false);
    expect(matchPattern('git1', 'git?')).toBe(true);
    expect(matchPattern('git12', 'git?')).toBe(false);
    expect(matchPattern('[10.0.0.1]:2222', '[10.0.0.*]:2222')).toBe(true);
    expect(matchPattern('anything', '*')).toBe(true);
  });

  it('takes comma lists and negations; a negated match wins', () => {
    expect(hostFieldMatches('a.example.com,b.example.com', 'b.example.com')).toBe(true);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'bad.example.com')).toBe(false);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'good.example.com')).toBe(true);
    expect(hostFieldMatches('!bad.example.com', 'good.example.com')).toBe(false);
    expect(hostFieldMatches('Git.Example.com', 'git.example.com')).toBe(true);
  });

  it('matches hashed |1|salt|hash entries (HMAC-SHA1 of the name)', () => {
    expect(hostFieldMatches(hashed('[127.0.0.1]:2222'), '[127.0.0.1]:2222')).toBe(true);
    expect(hostFieldMatches(hashed('[127.0.0.1]:2222'), '[127.0.0.1]:2223')).toBe(false);
    expect(hostFieldMatches(hashed('127.0.0.1'), '[127.0.0.1]:22')).toBe(false);
    expect(hostFieldMatches('|1|bad', '127.0.0.1')).toBe(false);
  });
});

describe('parseKnownHosts', () => {
  it('reads entries, markers and line numbers; skips comments and junk', () => {
    const text = [
      '# comment',
      '',
      line('[127.0.0.1]:2222', KEY_A),
      `@revoked * ssh-ed25519 ${KEY_B.toString('base64')}`,
      '@cert-authority *.example.com ssh-ed25519 AAAA',
      '@weird host ssh-ed25519 AAAA',
      'host-without-key ssh-ed25519',
      'host ssh-ed25519 not*base64',
      `${line('git.example.com', KEY_B)} a comment`,
    ].join('\n');
    const lines = parseKnownHosts(text);
    expect(lines.map((l) => [l.line, l.marker, l.hosts])).toEqual([
      [3, undefined, '[127.0.0.1]:2222'],
      [4, 'revoked', '*'],
      [5, 'cert-authority', '*.example.com'],
      [9, undefined, 'git.example.com'],
    ]);
    expect(lines[0]!.key.equals(KEY_A)).toBe(true);
  });
});

describe('verifyHostKey', () => {
  const file = parseKnownHosts(
    [line('[127.0.0.1]:2222', KEY_A), line(hashed('[10.0.0.5]:2200'), KEY_A), line('git.example.com,git2.example.com', KEY_B)].join('\n'),
  );

  it('accepts the known key for [host]:port, a hashed entry, and a plain name on port 22', () => {
    expect(verifyHostKey(file, '127.0.0.1', 2222, KEY_A)).toEqual({ ok: true, line: 1 });
    expect(verifyHostKey(file, '10.0.0.5', 2200, KEY_A)).toEqual({ ok: true, line: 2 });
    expect(verifyHostKey(file, 'GIT2.example.com', 22, KEY_B)).toEqual({ ok: true, line: 3 });
  });

  it('refuses another key for a known host (mismatch) and names the host and the key', () => {
    const v = verifyHostKey(file, '127.0.0.1', 2222, KEY_B);
    expect(v).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(!v.ok && v.message).toContain('HOST KEY MISMATCH for [127.0.0.1]:2222');
    expect(!v.ok && v.message).toContain(keyFingerprint(KEY_B));
  });

  it('refuses a host that has no entry (the port matters)', () => {
    expect(verifyHostKey(file, '127.0.0.1', 2223, KEY_A)).toMatchObject({ ok: false, reason: 'unknown' });
    expect(verifyHostKey(file, '127.0.0.1', 22, KEY_A)).toMatchObject({ ok: false, reason: 'unknown' });
    expect(verifyHostKey(file, 'git.example.com', 2222, KEY_B)).toMatchObject({ ok: false, reason: 'unknown' });
  });

  it('refuses a @revoked key even where it is otherwise listed', () => {
    const revoked = parseKnownHosts([line('[127.0.0.1]:2222', KEY_A), `@revoked * ssh-ed25519 ${KEY_A.toString('base64')}`].join('\n'));
    expect(verifyHostKey(revoked, '127.0.0.1', 2222, KEY_A)).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('ignores @cert-authority lines (certificates are not supported)', () => {
    const ca = parseKnownHosts(`@cert-authority * ssh-ed25519 ${KEY_A.toString('base64')}`);
    expect(verifyHostKey(ca, '127.0.0.1', 2222, KEY_A)).toMatchObject({ ok: false, reason: 'unknown' });
  });
});

describe('key helpers', () => {
  it('reads the key type from a blob and prints OpenSSH fingerprints', () => {
    expect(blobKeyType(KEY_A)).toBe('ssh-ed25519');
    expect(blobKeyType(Buffer.from([0, 0, 0, 200, 1]))).toBeUndefined();
    expect(keyFingerprint(KEY_A)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('offers the host key algorithms of the known key types', () => {
    expect(hostKeyAlgorithms(['ssh-ed25519'])).toEqual(['ssh-ed25519']);
    expect(hostKeyAlgorithms(['ssh-rsa', 'ssh-ed25519', 'ssh-rsa'])).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    expect(hostKeyAlgorithms(['sk-ssh-ed25519@openssh.com'])).toEqual([]);
  });
});
