import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileGlob, compileGlobs, GlobSyntaxError, globToRegExp } from '../../src/auth/glob.js';

describe('repository globs', () => {
  it.each([
    ['team/*', 'team/app.git', true],
    ['team/*', 'team/app', true],
    ['team/*', 'team/sub/app.git', false],
    ['team/*', 'other/app.git', false],
    ['team/**', 'team/sub/deeper/app.git', true],
    ['team/**', 'team/app.git', true],
    ['team/**/app', 'team/app.git', true],
    ['team/**/app', 'team/a/b/app.git', true],
    ['team/**/app', 'team/a/b/other.git', false],
    ['**', 'anything/at/all.git', true],
    ['*', 'top.git', true],
    ['*', 'a/b.git', false],
    ['team/app', 'team/app.git', true],
    ['team/app.git', 'team/app.git', true],
    ['team/app', 'team/application.git', false],
    ['team/ap?', 'team/app.git', true],
    ['team/ap?', 'team/ap/.git', false],
    ['a.b', 'axb.git', false],
    ['a+b', 'a+b.git', true],
    ['a(b)', 'a(b).git', true],
    ['a[b]', 'a[b].git', true],
    ['a[b]', 'ab.git', false],
    ['$x^', '$x^.git', true],
    ['a|b', 'a.git', false],
    ['Ünï/*', 'Ünï/日本.git', true],
  ])('%j matches %j: %s', (pattern, repo, expected) => {
    expect(compileGlob(pattern)(repo)).toBe(expected);
  });

  it('a list matches when any pattern does', () => {
    const m = compileGlobs(['a/*', 'b/**']);
    expect(m('a/x.git')).toBe(true);
    expect(m('b/x/y.git')).toBe(true);
    expect(m('c/x.git')).toBe(false);
  });

  it.each([[''], ['/abs/*'], ['a\\b'], ['a\nb'], ['a/***'], ['x'.repeat(2000)]])('refuses %j', (pattern) => {
    expect(() => globToRegExp(pattern)).toThrow(GlobSyntaxError);
  });

  it('a pattern without wildcards matches exactly itself (with or without .git)', () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9_.+@()$^{}|[\]-]{1,12}$/).filter((s) => !s.includes('*') && !s.includes('?'));
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.array(segment, { minLength: 1, maxLength: 4 }), (a, b) => {
        const p = a.join('/');
        const q = b.join('/');
        const m = compileGlob(p);
        expect(m(p)).toBe(true);
        expect(m(`${p}.git`)).toBe(true);
        if (q !== p && `${q}.git` !== p && q !== `${p}.git`) expect(m(q)).toBe(false);
      }),
    );
  });

  it('`*` never crosses a "/", `**` always does', () => {
    const segment = fc.stringMatching(/^[a-z0-9]{1,8}$/);
    fc.assert(
      fc.property(fc.array(segment, { minLength: 2, maxLength: 5 }), (parts) => {
        const repo = `${parts.join('/')}.git`;
        expect(compileGlob(`${parts[0]}/*`)(repo)).toBe(parts.length === 2);
        expect(compileGlob(`${parts[0]}/**`)(repo)).toBe(true);
      }),
    );
  });
});
