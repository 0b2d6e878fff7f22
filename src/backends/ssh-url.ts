/**
 * The pure half of githa's SSH client of a backend: the backend URL
 * `ssh://user@host[:port]/abs/prefix` and the exec command git would send
 * for a repository under it (`git-upload-pack '<prefix>/<repo>'`, quoted like
 * git's sq_quote). The connection itself is ssh.ts.
 */
import { userInfo } from 'node:os';
import type { StreamService } from './types.js';

export interface SshBackendUrl {
  host: string;
  port: number;
  /** From the URL; the current user when the URL has none. */
  username: string;
  /** The path prefix without a trailing slash: '' or '/abs/prefix' (or '/~/rel'). */
  prefix: string;
}

/** Parses `ssh://[user@]host[:port][/prefix]`; IPv6 hosts in brackets; no password, query or fragment. */
export function parseSshBackendUrl(raw: string): SshBackendUrl {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`invalid SSH backend URL ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'ssh:') throw new TypeError(`SSH backend URL must start with ssh://, got ${JSON.stringify(raw)}`);
  if (url.password !== '') throw new TypeError('SSH backend URL must not contain a password (githa uses its key)');
  if (url.search !== '' || url.hash !== '') throw new TypeError('SSH backend URL must not have a query or fragment');
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (hostname === '') throw new TypeError(`SSH backend URL without a host: ${JSON.stringify(raw)}`);
  const port = url.port === '' ? 22 : Number(url.port);
  const prefix = decodeURIComponent(url.pathname).replace(/\/+$/, '');
  if (/[\0\n\r]/.test(prefix)) throw new TypeError('SSH backend path contains a control character');
  const username = url.username === '' ? userInfo().username : decodeURIComponent(url.username);
  return { host: hostname, port, username, prefix };
}

/** The repository's path on the server, as git would use for the URL `<base>/<repo>`. */
export function sshRepositoryPath(prefix: string, repo: string): string {
  const path = `${prefix}/${repo}`;
  // ssh://host/~/x names x in the home directory (git: "/~" drops the slash).
  return path.startsWith('/~') ? path.slice(1) : path;
}

/** Quotes a word for the remote shell the way git does (quote.c sq_quote_buf): ' → '\'' and ! → '\!'. */
export function sqQuote(word: string): string {
  return `'${word.replace(/['!]/g, (c) => `'\\${c}'`)}'`;
}

/** The exec command git sends for a service on a path. */
export function sshExecCommand(service: StreamService, path: string): string {
  return `${service} ${sqQuote(path)}`;
}
