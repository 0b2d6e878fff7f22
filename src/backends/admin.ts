/**
 * githa managing repositories on a stock backend (RepositoryAdmin,
 * docs/operations.md "The admin account"): every operation is one exec of
 *
 *     sh -c '<ADMIN_SCRIPT>' githa-admin <op> '<arg>'...
 *
 * over SSH, the program constant (admin-script.ts) and each argument quoted
 * with sqQuote. Every repository name is checked by canonicalRepositoryName
 * and every stamp by its format before anything is sent, so a hostile name
 * never reaches a backend; the program checks its arguments again. The
 * answers are lines on stdout and an exit status: 0 done, 2 a refused
 * argument, 3 absent, 4 exists (see the program's header).
 */
import type { Config } from '../config/schema.js';
import { BackendAdminError, BackendUnavailableError, InvalidRepositoryNameError } from '../errors.js';
import { canonicalRepositoryName } from '../protocol/repository-name.js';
import { ADMIN_SCRIPT } from './admin-script.js';
import { SshBackendClient, type SshRunResult } from './ssh.js';
import { parseSshBackendUrl, sqQuote } from './ssh-url.js';
import type { AdminListing, AdminRefs, RefTip, RepositoryAdmin, TrashEntry } from './types.js';

/** Runs one command line on the backend (SshBackendClient.run, or a recording fake in unit tests). */
export type AdminExec = (command: string, signal?: AbortSignal, input?: string) => Promise<SshRunResult>;

export interface RepositoryAdminOptions {
  backend: string;
  /** Absolute path of the repository root on the backend (the admin URL's path). */
  root: string;
  repositories: Pick<Config['repositories'], 'trashDir' | 'initialBranch' | 'gitConfig' | 'shared'>;
  exec: AdminExec;
  close?: () => Promise<void>;
}

/** `20261206T074700Z`: UTC, to the second (one stamp for all copies of one delete). */
export const TRASH_STAMP = /^\d{8}T\d{6}Z$/;

/** The stamp of a moment, as githa names a trash entry. */
export function trashStamp(at: Date): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Refuses a repository name that is not canonical (InvalidRepositoryNameError), before anything is sent. */
function checkedName(repo: string): string {
  const canonical = canonicalRepositoryName(repo);
  if (canonical !== repo) throw new InvalidRepositoryNameError(`invalid repository name: ${JSON.stringify(repo)} is not canonical (${canonical})`);
  return repo;
}

function checkedStamp(stamp: string): string {
  if (!TRASH_STAMP.test(stamp)) throw new TypeError(`invalid trash stamp ${JSON.stringify(stamp)}: expected YYYYMMDDTHHMMSSZ`);
  return stamp;
}

/** A root the program accepts: absolute, no `.`/`..` component, no `//`, no control character. */
export function checkedRoot(root: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (!root.startsWith('/') || root.startsWith('/~') || /(^|\/)\.\.?(\/|$)|\/\/|[\0-\x1f\x7f]/.test(root)) {
    throw new TypeError(`the admin root must be an absolute path, got ${JSON.stringify(root)}`);
  }
  return root;
}

/** The command line for one operation: the program, its name as $0, and every argument quoted. */
export function adminCommand(op: string, args: readonly string[]): string {
  return ['sh', '-c', sqQuote(ADMIN_SCRIPT), 'githa-admin', op, ...args.map(sqQuote)].join(' ');
}

/** A layout path from a listing (`X.git`, `X`, `X/.git`) as a canonical name, or undefined when it has none. */
export function layoutName(path: string): string | undefined {
  try {
    return canonicalRepositoryName(path);
  } catch {
    return undefined;
  }
}

/** `repo <path>` lines → canonical names (sorted, each once) and the paths that have none. */
export function parseListing(stdout: string): AdminListing {
  const repositories = new Set<string>();
  const invalid: string[] = [];
  for (const path of fields(stdout, 'repo')) {
    const name = layoutName(path);
    if (name) repositories.add(name);
    else invalid.push(path);
  }
  return { repositories: [...repositories].sort(), invalid };
}

const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/**
 * The `refs` answer (admin-script.ts) for `names`: per name its refs
 * (`repo NAME` then `ref OID REFNAME` lines, HEAD not among them), null
 * (`absent NAME`), or undefined (`ask NAME`: list it over the Git protocol).
 * Every name must be answered once, in order; anything else is a broken program.
 */
export function parseRefs(stdout: string, names: readonly string[]): AdminRefs {
  const answers = new Map<string, RefTip[] | null | undefined>();
  const lines = stdout.split('\n');
  if (lines.at(-1) === '') lines.pop();
  let current: { name: string; refs: RefTip[] } | undefined;
  let next = 0;
  const answered = (name: string): void => {
    if (names[next] !== name) throw new Error(`unexpected answer for ${JSON.stringify(name)} (expected ${JSON.stringify(names[next] ?? 'nothing')})`);
    next++;
  };
  for (const line of lines) {
    const space = line.indexOf(' ');
    const word = space < 0 ? line : line.slice(0, space);
    const rest = line.slice(space + 1);
    if (word === 'ref' && current) {
      const sp = rest.indexOf(' ');
      const oid = rest.slice(0, sp);
      const ref = rest.slice(sp + 1);
      if (sp < 0 || !OID.test(oid) || !ref.startsWith('refs/')) throw new Error(`unexpected line ${JSON.stringify(line)}`);
      current.refs.push({ name: ref, oid });
    } else if (word === 'repo' && space > 0) {
      answered(rest);
      current = { name: rest, refs: [] };
      answers.set(rest, current.refs);
    } else if (word === 'absent' && space > 0) {
      answered(rest);
      current = undefined;
      answers.set(rest, null);
    } else if (word === 'ask' && space > 0) {
      // After a `repo` block: for-each-ref failed there; its refs are dropped.
      if (current?.name === rest) answers.set(rest, undefined);
      else {
        answered(rest);
        answers.set(rest, undefined);
      }
      current = undefined;
    } else throw new Error(`unexpected line ${JSON.stringify(line)}`);
  }
  if (next !== names.length) throw new Error(`no answer for ${JSON.stringify(names[next])}`);
  return answers;
}

/** `<word> STAMP <path>` lines (`trash`, `purged`) → entries, oldest first; a path without a valid name is left out (it cannot be named). */
export function parseTrash(stdout: string, word: 'trash' | 'purged'): TrashEntry[] {
  const entries: TrashEntry[] = [];
  for (const rest of fields(stdout, word)) {
    const space = rest.indexOf(' ');
    const stamp = rest.slice(0, space);
    const repo = layoutName(rest.slice(space + 1));
    if (space < 0 || !TRASH_STAMP.test(stamp)) throw new Error(`unexpected line ${JSON.stringify(`${word} ${rest}`)}`);
    if (repo) entries.push({ stamp, repo });
  }
  return entries.sort((a, b) => a.stamp.localeCompare(b.stamp) || a.repo.localeCompare(b.repo));
}

/** The rest of every line that starts with `<word> `; any other line is a broken program. */
function fields(stdout: string, word: string): string[] {
  const lines = stdout.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) => {
    if (!line.startsWith(`${word} `)) throw new Error(`unexpected line ${JSON.stringify(line)}`);
    return line.slice(word.length + 1);
  });
}

/** See the module comment. */
export class SshRepositoryAdmin implements RepositoryAdmin {
  readonly backend: string;
  private readonly root: string;

  constructor(private readonly o: RepositoryAdminOptions) {
    this.backend = o.backend;
    this.root = checkedRoot(o.root);
  }

  async list(signal?: AbortSignal): Promise<AdminListing> {
    const r = await this.run('list', [this.o.repositories.trashDir], [0], signal);
    return this.parsed(() => parseListing(r.stdout));
  }

  /** The refs of each of `repos` (canonical names, checked before anything is sent), read on the backend itself: one exec for all. */
  async refs(repos: readonly string[], signal?: AbortSignal): Promise<AdminRefs> {
    const names = repos.map(checkedName);
    if (names.length === 0) return new Map();
    const r = await this.run('refs', [], [0], signal, names.map((n) => `${n}\n`).join(''));
    return this.parsed(() => parseRefs(r.stdout, names));
  }

  async create(repo: string, o: { description?: string | undefined; headBranch?: string | undefined } = {}, signal?: AbortSignal): Promise<'created' | 'exists'> {
    const cfg = this.o.repositories;
    const description = o.description ?? '';
    // eslint-disable-next-line no-control-regex -- one line of text, as git's gitweb reads it
    if (/[\0-\x1f\x7f]/.test(description) || description.length > 1000) throw new TypeError('invalid description: one line of at most 1000 characters');
    const config = Object.entries(cfg.gitConfig).flat();
    const r = await this.run('create', [checkedName(repo), o.headBranch ?? cfg.initialBranch, cfg.shared ?? '', description, ...config], [0, 4], signal);
    return this.status(r, { 0: 'created', 4: 'exists' } as const);
  }

  async trash(repo: string, stamp: string, signal?: AbortSignal): Promise<'trashed' | 'absent'> {
    const r = await this.run('trash', [this.o.repositories.trashDir, checkedName(repo), checkedStamp(stamp)], [0, 3], signal);
    return this.status(r, { 0: 'trashed', 3: 'absent' } as const);
  }

  async restore(repo: string, stamp?: string, signal?: AbortSignal): Promise<{ status: 'restored' | 'absent' | 'exists'; stamp?: string }> {
    const args = [this.o.repositories.trashDir, checkedName(repo), ...(stamp === undefined ? [] : [checkedStamp(stamp)])];
    const r = await this.run('restore', args, [0, 3, 4], signal);
    const status = this.status(r, { 0: 'restored', 3: 'absent', 4: 'exists' } as const);
    const found = r.stdout.trim().split(' ')[1];
    return found && TRASH_STAMP.test(found) ? { status, stamp: found } : { status };
  }

  async rename(from: string, to: string, signal?: AbortSignal): Promise<'renamed' | 'absent' | 'exists'> {
    const r = await this.run('rename', [checkedName(from), checkedName(to)], [0, 3, 4], signal);
    return this.status(r, { 0: 'renamed', 3: 'absent', 4: 'exists' } as const);
  }

  async trashed(signal?: AbortSignal): Promise<TrashEntry[]> {
    const r = await this.run('trashed', [this.o.repositories.trashDir], [0], signal);
    return this.parsed(() => parseTrash(r.stdout, 'trash'));
  }

  async purge(before: string, repo?: string, signal?: AbortSignal): Promise<TrashEntry[]> {
    const args = [this.o.repositories.trashDir, checkedStamp(before), ...(repo === undefined ? [] : [checkedName(repo)])];
    const r = await this.run('purge', args, [0], signal);
    return this.parsed(() => parseTrash(r.stdout, 'purged'));
  }

  async close(): Promise<void> {
    await this.o.close?.();
  }

  /** One exec; an exit status outside `expected` is a BackendAdminError with the program's first line of stderr. */
  private async run(op: string, args: readonly string[], expected: readonly number[], signal?: AbortSignal, input?: string): Promise<SshRunResult> {
    const command = adminCommand(op, [this.root, ...args]);
    const r = await this.o.exec(command, signal, input);
    if (r.code !== null && expected.includes(r.code)) return r;
    const why = r.stderr.split('\n').find((l) => l.trim() !== '') ?? (r.code === null ? 'no exit status' : 'no message');
    throw new BackendAdminError(`backend ${this.backend}: ${op} failed (exit ${r.code ?? 'unknown'}): ${why.trim()}`, this.backend);
  }

  /** The status word for the exit status; the program must also have printed it (an exit status alone could be another command's). */
  private status<T extends string>(r: SshRunResult, words: Partial<Record<number, T>>): T {
    const word = words[r.code!];
    if (word === undefined || r.stdout.split('\n')[0]?.split(' ')[0] !== word) {
      throw new BackendAdminError(`backend ${this.backend}: unexpected answer (exit ${r.code}): ${JSON.stringify(r.stdout.slice(0, 200))}`, this.backend);
    }
    return word;
  }

  private parsed<T>(parse: () => T): T {
    try {
      return parse();
    } catch (err) {
      throw new BackendAdminError(`backend ${this.backend}: ${(err as Error).message}`, this.backend, { cause: err });
    }
  }
}

export interface SshAdminConfig {
  backend: Pick<Config['backends'][number], 'id' | 'ssh' | 'admin'>;
  ssh: Pick<Config['ssh'], 'backendKey' | 'backendKnownHosts'>;
  repositories: RepositoryAdminOptions['repositories'];
  /** Handshake and channel timeout (http.backendTimeoutMs). */
  timeoutMs: number;
}

/** Output kept at most (a listing of many thousand repositories fits). */
const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;
/** An operation may walk or remove a large tree: longer than one Git request's wait. */
const MIN_RUN_MS = 300_000;

/** The admin of a backend with `admin` (true: its `ssh` URL; a string: that account), on its own SSH connection. */
export function sshRepositoryAdmin(c: SshAdminConfig): SshRepositoryAdmin {
  const url = c.backend.admin === true ? c.backend.ssh : c.backend.admin;
  if (!url || !c.ssh.backendKey || !c.ssh.backendKnownHosts) {
    throw new BackendUnavailableError(`backend ${c.backend.id}: admin needs an ssh:// URL, ssh.backendKey and ssh.backendKnownHosts`, c.backend.id);
  }
  const client = new SshBackendClient({ id: c.backend.id, url, privateKey: c.ssh.backendKey, knownHosts: c.ssh.backendKnownHosts, timeoutMs: c.timeoutMs, maxConnections: 1 });
  const runMs = Math.max(c.timeoutMs, MIN_RUN_MS);
  return new SshRepositoryAdmin({
    backend: c.backend.id,
    root: parseSshBackendUrl(url).prefix,
    repositories: c.repositories,
    exec: (command, signal, input) => client.run(command, { signal, input, maxOutputBytes: MAX_OUTPUT_BYTES, timeoutMs: runMs }),
    close: () => client.close(),
  });
}
