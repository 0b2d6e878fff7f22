import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizedKeysCommand, expandArgv, type KeyQuery } from '../../src/frontends/ssh/authorized-keys-command.js';
import { fingerprintOf, parseAuthorizedKeys } from '../../src/frontends/ssh/authorized-keys.js';

describe('ssh.authorizedKeysCommand', () => {
  let dir = '';
  let publicLine = '';
  let query: KeyQuery;
  let calls = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'githa-keys-command-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'frank@host', '-f', join(dir, 'key')]);
    publicLine = readFileSync(join(dir, 'key.pub'), 'utf8').trim();
    const key = parseAuthorizedKeys(publicLine).keys[0]!;
    query = { login: 'git', algo: key.key.type, data: key.blob, fingerprint: fingerprintOf(key.blob) };
    calls = join(dir, 'calls');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A program that records its arguments and prints `body`'s output. */
  function program(body: string): string {
    const path = join(dir, `prog-${Math.random().toString(16).slice(2)}.sh`);
    writeFileSync(calls, '');
    writeFileSync(path, `#!/bin/sh\necho "run $*" >> '${calls}'\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  }
  const runs = (): number => readFileSync(calls, 'utf8').split('\n').filter(Boolean).length;

  it('replaces placeholders within single arguments, never the program', () => {
    expect(expandArgv(['/bin/%u', '%u', '--key=%t:%k', '%f', '100%%', '%x'], query)).toEqual([
      '/bin/%u',
      'git',
      `--key=${query.algo}:${query.data.toString('base64')}`,
      query.fingerprint,
      '100%',
      '%x',
    ]);
  });

  it('finds the key in the output, with the user the line names; caches the answer', async () => {
    const path = program(`echo 'environment="GITHA_USER=frank" ${publicLine}'; cat`);
    const problems: string[] = [];
    const cmd = new AuthorizedKeysCommand({ argv: [path, '%u', '%f'], timeoutMs: 5000, maxOutputBytes: 65536, cacheMs: 60_000 }, (m) => problems.push(m));
    // Two attempts at once (a query and a signed attempt): one run.
    const [a, b] = await Promise.all([cmd.find(query), cmd.find(query)]);
    expect(a?.user).toBe('frank');
    expect(b).toBe(a);
    expect(await cmd.find(query)).toBe(a);
    expect(runs()).toBe(1);
    expect(readFileSync(calls, 'utf8').trim()).toBe(`run git ${query.fingerprint}`);
    // `cat` read stdin: it got EOF at once, not a wait until the timeout.
    expect(problems).toEqual([]);
    // Another login name is another question (the mapping may depend on it).
    expect((await cmd.find({ ...query, login: 'other' }))?.user).toBe('frank');
    expect(runs()).toBe(2);
  });

  it('without a cache, asks every time; a key not printed is refused', async () => {
    const path = program('echo "# nothing for you"');
    const cmd = new AuthorizedKeysCommand({ argv: [path], timeoutMs: 5000, maxOutputBytes: 65536, cacheMs: 0 }, () => {});
    expect(await cmd.find(query)).toBeUndefined();
    expect(await cmd.find(query)).toBeUndefined();
    expect(runs()).toBe(2);
  });

  it('never passes an option-like or odd login name', async () => {
    const path = program(`echo '${publicLine}'`);
    const problems: string[] = [];
    const cmd = new AuthorizedKeysCommand({ argv: [path, '%u'], timeoutMs: 5000, maxOutputBytes: 65536, cacheMs: 0 }, (m) => problems.push(m));
    for (const login of ['-oProxyCommand=x', '--help', 'a b', 'a;b', '', 'x'.repeat(65), 'é\n']) {
      expect(await cmd.find({ ...query, login })).toBeUndefined();
    }
    expect(runs()).toBe(0);
    expect(problems).toHaveLength(7);
  });

  it.each([
    ['exit 2', 'exit status 2'],
    ['exec sleep 5', 'no answer within 300 ms'],
    ['yes "# padding" | head -c 100000', 'more than 1000 bytes of output'],
  ])('refuses the key and reports why when the program fails: %s', async (body, why) => {
    const path = program(body);
    const problems: Array<[string, Record<string, unknown>]> = [];
    const cmd = new AuthorizedKeysCommand({ argv: [path], timeoutMs: 300, maxOutputBytes: 1000, cacheMs: 0 }, (m, f) => problems.push([m, f]));
    expect(await cmd.find(query)).toBeUndefined();
    expect(problems).toEqual([[`authorizedKeysCommand failed: ${why}; key refused`, expect.objectContaining({ program: path, key: query.fingerprint })]]);
  });

  it('reports a program that does not exist', async () => {
    const problems: string[] = [];
    const cmd = new AuthorizedKeysCommand({ argv: [join(dir, 'missing')], timeoutMs: 300, maxOutputBytes: 1000, cacheMs: 0 }, (m) => problems.push(m));
    expect(await cmd.find(query)).toBeUndefined();
    expect(problems).toEqual(['authorizedKeysCommand failed: ENOENT; key refused']);
  });

  it('keeps at most maxCacheEntries answers', async () => {
    const path = program('true');
    const cmd = new AuthorizedKeysCommand({ argv: [path], timeoutMs: 5000, maxOutputBytes: 1000, cacheMs: 60_000, maxCacheEntries: 2 }, () => {});
    for (const login of ['a', 'b', 'c', 'a']) await cmd.find({ ...query, login });
    // 'a' was evicted by 'c', so it ran again.
    expect(runs()).toBe(4);
    await cmd.find({ ...query, login: 'c' });
    expect(runs()).toBe(4);
  });
});
