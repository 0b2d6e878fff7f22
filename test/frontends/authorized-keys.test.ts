import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { namesWithAccess } from '../../src/auth/access.js';
import { fingerprintOf, parseAuthorizedKeys } from '../../src/frontends/ssh/authorized-keys.js';

describe('authorized keys: the user behind a key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'githa-authorized-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const keyLine = (comment: string): string => {
    const path = join(dir, `k-${Math.random().toString(16).slice(2)}`);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
    return readFileSync(`${path}.pub`, 'utf8').trim();
  };

  it('a comment never names a user the access rules or groups name; GITHA_USER does', () => {
    const reserved = namesWithAccess({ default: 'none', rules: [{ repos: 'a/**', users: ['carol', '*'], access: 'read' }] }, { admins: ['root'] }, 'anonymous');
    expect([...reserved].sort()).toEqual(['anonymous', 'carol', 'root']);
    const root = keyLine('root@laptop');
    const carol = keyLine('carol@desk');
    const anon = keyLine('anonymous@x');
    const frank = keyLine('frank@host');
    const text = [root, carol, anon, frank, `environment="GITHA_USER=root" ${keyLine('ops@box')}`].join('\n');
    const { keys, problems } = parseAuthorizedKeys(text, reserved);
    const fp = (i: number): string => fingerprintOf(keys[i]!.blob);
    expect(keys.map((k) => k.user)).toEqual([fp(0), fp(1), fp(2), 'frank', 'root']);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toBe(`line 1: the comment names root, whom access rules or auth.groups name; a key gets that name only from environment="GITHA_USER=root" (this key is ${fp(0)})`);
    // Without rules, the comment is the user as before.
    expect(parseAuthorizedKeys(root).keys[0]!.user).toBe('root');
  });
});
