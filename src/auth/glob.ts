/**
 * Repository-name globs for access rules (docs/security.md "Authorization").
 * A small matcher of githa's own, never a shell's: the pattern is turned into
 * an anchored regular expression in which every character but the three
 * wildcards is literal.
 *
 *   `*`   any run of characters within one path segment (no `/`)
 *   `?`   one character other than `/`
 *   `**`  any run of characters, `/` included; `**` + `/` also matches no
 *         directory at all (`team/**` + `/x.git` matches `team/x.git`)
 *
 * Patterns are matched against the canonical repository name (`team/app.git`)
 * and against the same name without its `.git` suffix (`team/app`), so
 * operators may write either form.
 */

export type RepositoryMatcher = (repo: string) => boolean;

/** A pattern githa refuses at start-up: the message names what is wrong. */
export class GlobSyntaxError extends Error {}

const MAX_PATTERN_LENGTH = 1024;

/** Compiles one pattern; throws GlobSyntaxError for a pattern that cannot be meant. */
export function compileGlob(pattern: string): RepositoryMatcher {
  const re = globToRegExp(pattern);
  return (repo) => re.test(repo) || (repo.endsWith('.git') && re.test(repo.slice(0, -4)));
}

/** Several patterns: a name matches when any one of them does. */
export function compileGlobs(patterns: readonly string[]): RepositoryMatcher {
  const all = patterns.map(compileGlob);
  return (repo) => all.some((m) => m(repo));
}

export function globToRegExp(pattern: string): RegExp {
  if (pattern.length === 0) throw new GlobSyntaxError('empty repository pattern');
  if (pattern.length > MAX_PATTERN_LENGTH) throw new GlobSyntaxError('repository pattern too long');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f\\]/.test(pattern)) throw new GlobSyntaxError(`repository pattern ${JSON.stringify(pattern)} has a control character or "\\"`);
  if (pattern.startsWith('/')) throw new GlobSyntaxError(`repository pattern ${JSON.stringify(pattern)} must be relative (no leading "/")`);
  if (/\*{3,}/.test(pattern)) throw new GlobSyntaxError(`repository pattern ${JSON.stringify(pattern)} has "***"`);
  let out = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` also matches zero directories; a bare `**` anything at all.
      if (pattern[i + 2] === '/') {
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${out}$`, 'su');
}
