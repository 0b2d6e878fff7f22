import { describe, expect, it } from 'vitest';
import { InvalidRepositoryNameError } from '../../src/errors.js';
import { backendRepositoryName, canonicalRepositoryName } from '../../src/protocol/repository-name.js';

describe('canonicalRepositoryName', () => {
  it.each([
    ['repo', 'repo.git'],
    ['repo.git', 'repo.git'],
    ['/repo.git', 'repo.git'],
    ['~/repo.git', 'repo.git'],
    ['/~/repo.git', 'repo.git'],
    ['team/app', 'team/app.git'],
    ['/team/app.git/', 'team/app.git'],
    ['team/app/', 'team/app.git'],
    ['a_b-c.d+e@f', 'a_b-c.d+e@f.git'],
    ['x.', 'x..git'],
    // A non-bare repository named by its git directory is the repository (git's enter_repo).
    ['team/app/.git', 'team/app.git'],
    ['/app/.git/', 'app.git'],
    ['app.git/.git', 'app.git'],
    ['Ünïcödé/日本語', 'Ünïcödé/日本語.git'],
    ['a'.repeat(251), `${'a'.repeat(251)}.git`],
    [Array.from({ length: 100 }, () => 'a').join('/'), `${Array.from({ length: 100 }, () => 'a').join('/')}.git`],
  ])('%j -> %j', (raw, canonical) => {
    expect(canonicalRepositoryName(raw)).toBe(canonical);
  });

  it('is idempotent', () => {
    for (const raw of ['repo', '/team/app/', '~/x.git']) {
      const once = canonicalRepositoryName(raw);
      expect(canonicalRepositoryName(once)).toBe(once);
    }
  });

  it.each([
    ['empty', ''],
    ['only a slash', '/'],
    ['only ~/', '~/'],
    ['a bare .git', '.git'],
    ['a bare /.git', '/.git'],
    ['a double-slashed /.git', '//.git'],
    ['a .git inside a non-bare spelling', 'app/.git/.git'],
    ['a name ending in .git.git (two names for one copy)', 'app.git.git'],
    ['..', '..'],
    ['a .. component', 'team/../secret'],
    ['a leading ..', '../etc/passwd'],
    ['a . component', 'team/./app'],
    ['a trailing ..', 'team/..'],
    ['a hidden component', 'team/.ssh'],
    ['a hidden repository', '.hidden.git'],
    ['a component starting with -', '-oProxyCommand=x'],
    ['a later component starting with -', 'team/--upload-pack=x'],
    ['a double slash', 'team//app'],
    ['a leading double slash', '//etc/passwd'],
    ['two trailing slashes', 'repo//'],
    ['a backslash', 'team\\app'],
    ['NUL', 'repo\0.git'],
    ['a newline', 'repo\n'],
    ['a tab', 're\tpo'],
    ['DEL', 'repo\x7f'],
    ['a percent sign', 'repo%2e'],
    ['~user', '~alice/repo.git'],
    ['a ~ inside', 'a/~b'],
    ['a space', 'my repo'],
    ['whitespace only', ' '],
    ['a non-breaking space', 'a\u00a0b'],
    ['a bidi override', 'a\u202eb'],
    ['a zero-width joiner', 'a\u200db'],
    ['a lone surrogate', 'a\ud800b'],
    ['NFD', 'Cafe\u0301'],
    ['a repository inside a repository', 'a.git/b'],
    ['255 bytes exceeded', 'a'.repeat(252)],
    ['255 bytes exceeded by multibyte characters', 'é'.repeat(126)],
    ['101 components', Array.from({ length: 101 }, () => 'a').join('/')],
    ['a very long input', 'a/'.repeat(10_000)],
    ...[';', '|', '&', '$', '`', '*', '?', '[', ']', '(', ')', '<', '>', '!', '#', ':', '=', ',', '{', '}', '"', "'", '^'].map(
      (c) => [`the metacharacter ${c}`, `repo${c}x`] as [string, string],
    ),
  ])('rejects %s', (_what, raw) => {
    expect(() => canonicalRepositoryName(raw)).toThrow(InvalidRepositoryNameError);
  });

  it('error messages do not echo the name', () => {
    try {
      canonicalRepositoryName('secret\x1b[31m');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain('secret');
    }
  });
});

describe('backendRepositoryName', () => {
  it.each([
    ['app.git', 'app'],
    ['team/app.git', 'team/app'],
    ['x..git', 'x.'],
  ])('%j -> %j (the spelling every layout answers to)', (repo, asked) => {
    expect(backendRepositoryName(repo)).toBe(asked);
  });

  it('maps every client spelling of one repository to one backend name', () => {
    const names = ['app', 'app.git', '/app/', 'app/.git', '~/app.git'].map((raw) => backendRepositoryName(canonicalRepositoryName(raw)));
    expect(new Set(names)).toEqual(new Set(['app']));
  });
});
