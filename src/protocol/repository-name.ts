/**
 * Repository names: the one canonical spelling githa uses for a repository,
 * whatever transport named it (the path of an HTTP URL, the argument of an SSH
 * command, the pathname of a git:// request; gitprotocol-pack "Transports").
 *
 * The name is used as a key in cluster state and as a path below each
 * backend's root, so the rule is deliberately narrow (docs/protocol.md):
 *
 * - one leading "/" and then one leading "~/" are dropped (ssh://host/~/x and
 *   git@host:x name the same repository); "~user/" is rejected;
 * - one trailing "/" is dropped, then one trailing "/.git" (a non-bare
 *   repository named by its git directory: `X/.git` is `X`, as for git's
 *   enter_repo); ".git" is appended to the last component unless it already
 *   ends with it (`X` and `X.git` are one repository);
 * - components are separated by single "/" ("//" is rejected, never merged);
 * - a component is non-empty, does not start with "." or "-" (so no ".", "..",
 *   hidden files or option-like names), and consists of ASCII letters, digits,
 *   ".", "_", "-", "+", "@" and non-ASCII letters, marks and digits; anything
 *   else (whitespace, shell metacharacters, "%", "\", "~", control characters,
 *   format characters such as bidi overrides) is rejected;
 * - only the last component may end in ".git": no repository inside another;
 *   and it may not end in ".git.git": a backend asked for `X.git` (see
 *   backendRepositoryName) would find `X.git` there, so `X.git.git` and
 *   `X.git` would be two names for one copy;
 * - non-ASCII names must be in Unicode NFC, so that one name has one spelling;
 * - at most 100 components and 255 UTF-8 bytes (after canonicalisation).
 */
import { InvalidRepositoryNameError } from '../errors.js';

export const MAX_REPOSITORY_NAME_BYTES = 255;
export const MAX_REPOSITORY_COMPONENTS = 100;
const GIT_SUFFIX = '.git';

/** A component's characters (the leading "." / "-" rule is checked apart). */
const COMPONENT_RE = /^[A-Za-z0-9._+@\-\p{L}\p{M}\p{N}]+$/u;

function invalid(reason: string): never {
  throw new InvalidRepositoryNameError(`invalid repository name: ${reason}`);
}

/** Returns the canonical name (see the module comment) or raises InvalidRepositoryNameError. */
export function canonicalRepositoryName(raw: string): string {
  // Cheap bound first: even the longest valid input is small.
  if (raw.length > 4 * MAX_REPOSITORY_NAME_BYTES) invalid('too long');
  // These get precise messages; the character class below would reject them anyway.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\0-\x1f\x7f]/.test(raw)) invalid('control character');
  if (raw.includes('\\')) invalid('backslash');
  if (raw.includes('%')) invalid('percent sign (encoded twice?)');

  let name = raw;
  if (name.startsWith('/')) name = name.slice(1);
  if (name.startsWith('~/')) name = name.slice(2);
  else if (name.startsWith('~')) invalid('"~user" paths are not supported');
  if (name.endsWith('/')) name = name.slice(0, -1);
  if (name.endsWith(`/${GIT_SUFFIX}`)) name = name.slice(0, -(GIT_SUFFIX.length + 1));
  if (name.length === 0) invalid('empty');

  const components = name.split('/');
  if (components.length > MAX_REPOSITORY_COMPONENTS) invalid('too many components');
  components.forEach((component, i) => {
    if (component.length === 0) invalid('empty path component');
    if (component === '.' || component === '..') invalid('"." or ".." component');
    if (component.startsWith('.')) invalid('component starting with "."');
    if (component.startsWith('-')) invalid('component starting with "-"');
    if (!COMPONENT_RE.test(component)) invalid('character not allowed');
    if (i < components.length - 1 && component.endsWith(GIT_SUFFIX)) invalid('repository inside a repository');
  });
  if (name !== name.normalize('NFC')) invalid('not in Unicode NFC');

  if (name.endsWith(GIT_SUFFIX + GIT_SUFFIX)) invalid('name ending in ".git.git"');
  if (!name.endsWith(GIT_SUFFIX)) name += GIT_SUFFIX;
  if (Buffer.byteLength(name, 'utf8') > MAX_REPOSITORY_NAME_BYTES) invalid('too long');
  return name;
}

/**
 * The name githa asks a backend for: the canonical name without its ".git".
 * Every stock server finds a repository with git's enter_repo (path.c, used by
 * upload-pack, receive-pack, http-backend and git daemon alike), which tries
 * `X/.git`, `X`, `X.git/.git`, `X.git` in that order for the name `X`, but only
 * `X.git/.git` and `X.git` for `X.git`. Asking for `X` lets each backend find
 * its copy wherever its layout keeps it (docs/protocol.md "Repository names").
 */
export function backendRepositoryName(repo: string): string {
  return repo.endsWith(GIT_SUFFIX) ? repo.slice(0, -GIT_SUFFIX.length) : repo;
}

/** A repository name as a URL path: each component percent-encoded. */
export function repositoryUrlPath(repo: string): string {
  return repo.split('/').map(encodeURIComponent).join('/');
}
