import { userInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseSshBackendUrl, sqQuote, sshExecCommand, sshRepositoryPath } from '../../src/backends/ssh-url.js';

describe('parseSshBackendUrl', () => {
  it('reads user, host, port and the path prefix', () => {
    expect(parseSshBackendUrl('ssh://git@git1.example.com:2222/srv/git/')).toEqual({
      host: 'git1.example.com',
      port: 2222,
      username: 'git',
      prefix: '/srv/git',
    });
    expect(parseSshBackendUrl('ssh://root@127.0.0.1:41234/tmp/githa-test-x/b1/repos')).toMatchObject({
      host: '127.0.0.1',
      port: 41234,
      prefix: '/tmp/githa-test-x/b1/repos',
    });
  });

  it('defaults to port 22 and the current user; takes IPv6 in brackets and %-escapes', () => {
    expect(parseSshBackendUrl('ssh://host/repos')).toEqual({ host: 'host', port: 22, username: userInfo().username, prefix: '/repos' });
    expect(parseSshBackendUrl('ssh://g%40it@[::1]:22/a%20b')).toEqual({ host: '::1', port: 22, username: 'g@it', prefix: '/a b' });
    expect(parseSshBackendUrl('ssh://git@host')).toMatchObject({ prefix: '' });
  });

  it('refuses other schemes, passwords, queries and junk', () => {
    expect(() => parseSshBackendUrl('http://host/x')).toThrow(/ssh:\/\//);
    expect(() => parseSshBackendUrl('ssh://git:secret@host/x')).toThrow(/password/);
    expect(() => parseSshBackendUrl('ssh://git@host/x?y')).toThrow(/query/);
    expect(() => parseSshBackendUrl('git@host:x')).toThrow();
    expect(() => parseSshBackendUrl('ssh://git@host/a%0Ab')).toThrow(/control/);
  });
});

describe('sshRepositoryPath', () => {
  it('appends the repository to the prefix, as git does for <url>/<repo>', () => {
    expect(sshRepositoryPath('/srv/git', 'team/app.git')).toBe('/srv/git/team/app.git');
    expect(sshRepositoryPath('', 'app.git')).toBe('/app.git');
    expect(sshRepositoryPath('/~/repos', 'app.git')).toBe('~/repos/app.git');
  });
});

describe('sqQuote and the exec command', () => {
  it("quotes like git's sq_quote_buf", () => {
    expect(sqQuote('/srv/git/app.git')).toBe("'/srv/git/app.git'");
    expect(sqQuote("it's")).toBe(`'it'\\''s'`);
    expect(sqQuote('wow!')).toBe(`'wow'\\!''`);
    expect(sqQuote('$(rm -rf /) `x` "y" \\z')).toBe(`'$(rm -rf /) \`x\` "y" \\z'`);
    expect(sqQuote('')).toBe("''");
  });

  it('builds the command git sends', () => {
    expect(sshExecCommand('git-upload-pack', '/srv/git/a b.git')).toBe("git-upload-pack '/srv/git/a b.git'");
    expect(sshExecCommand('git-receive-pack', "/x/it's.git")).toBe(`git-receive-pack '/x/it'\\''s.git'`);
  });

  it('survives a real POSIX shell unchanged', async () => {
    const { execFileSync } = await import('node:child_process');
    for (const word of ["it's", 'wow!', '$(echo no)', 'a\\b', "''", '!x!']) {
      expect(execFileSync('/bin/sh', ['-c', `printf %s ${sqQuote(word)}`], { encoding: 'utf8' })).toBe(word);
    }
  });
});
