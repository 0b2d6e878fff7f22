import { parseSshBackendUrl, sqQuote } from '../backends/ssh-url.js';
import type { Config } from '../config/schema.js';
import type { Backend } from './types.js';

/*
 * What an operator runs by hand on a backend githa may not manage (no
 * `admin`: docs/operations.md "Repository lifecycle"): the same steps the
 * admin account takes (deploy/backend/githa-admin), with the backend's real
 * repository root when its ssh URL names it.
 */

type Repositories = Pick<Config['repositories'], 'trashDir' | 'initialBranch' | 'gitConfig' | 'shared'>;

/** The account and repository root githa knows a backend by: its admin URL, else its SSH URL; undefined when neither parses. */
export function backendAccount(b: Pick<Backend, 'ssh' | 'admin'>): { user: string; root: string } | undefined {
  const url = typeof b.admin === 'string' ? b.admin : b.ssh;
  if (url === undefined) return undefined;
  try {
    const u = parseSshBackendUrl(url);
    return { user: u.username, root: u.prefix };
  } catch {
    return undefined;
  }
}

/** The repository root of a backend: the path of its admin or ssh URL, or a placeholder naming it. */
export function backendRoot(b: Pick<Backend, 'id' | 'ssh' | 'admin'>): string {
  const root = backendAccount(b)?.root;
  return root && !root.startsWith('/~') ? root : `<repository root of ${b.id}>`;
}

/** A word for a command line an operator pastes: as it is when it is plain, else quoted (a leading `~/` stays unquoted, so it expands). */
export function shellWord(s: string): string {
  if (s.startsWith('~/')) return `~/${shellWord(s.slice(2))}`;
  return /^[A-Za-z0-9._/+=:@-]+$/.test(s) ? s : sqQuote(s);
}

function on(b: Pick<Backend, 'id'>, cmd: string): string {
  return `on ${b.id}: ${cmd}`;
}

/** `git init --bare` with the configured HEAD, sharing and `git config` lines (as the admin account's `create`). */
export function createByHand(b: Pick<Backend, 'id' | 'ssh' | 'admin'>, repo: string, r: Repositories, description?: string): string {
  const path = shellWord(`${backendRoot(b)}/${repo}`);
  const init = `git init --bare --initial-branch=${r.initialBranch}${r.shared ? ` --shared=${r.shared}` : ''} ${path}`;
  const config = Object.entries(r.gitConfig).map(([k, v]) => `git --git-dir=${path} config ${k} ${sqQuote(v)}`);
  const desc = description ? [`printf '%s\\n' ${sqQuote(description)} > ${path}/description`] : [];
  return on(b, [init, ...config, ...desc].join(' && '));
}

/** Moving a copy into the dated trash directory (as the admin account's `trash`). */
export function trashByHand(b: Pick<Backend, 'id' | 'ssh' | 'admin'>, repo: string, stamp: string, r: Repositories): string {
  const root = backendRoot(b);
  const dest = `${root}/${r.trashDir}/${stamp}/${repo}`;
  return on(b, `mkdir -p ${shellWord(dest.slice(0, dest.lastIndexOf('/')))} && mv ${shellWord(`${root}/${repo}`)} ${shellWord(dest)}`);
}

/** Moving a trashed copy back (as the admin account's `restore`). */
export function restoreByHand(b: Pick<Backend, 'id' | 'ssh' | 'admin'>, repo: string, stamp: string, r: Repositories): string {
  const root = backendRoot(b);
  return on(b, `mv ${shellWord(`${root}/${r.trashDir}/${stamp}/${repo}`)} ${shellWord(`${root}/${repo}`)}`);
}

/** Renaming a copy (as the admin account's `rename`). */
export function renameByHand(b: Pick<Backend, 'id' | 'ssh' | 'admin'>, from: string, to: string): string {
  const root = backendRoot(b);
  const dest = `${root}/${to}`;
  const dir = dest.slice(0, dest.lastIndexOf('/'));
  return on(b, `${dir === root ? '' : `mkdir -p ${shellWord(dir)} && `}mv ${shellWord(`${root}/${from}`)} ${shellWord(dest)}`);
}
