/**
 * The HTTP users file of `auth.http.mode: githa` (docs/security.md
 * "Authentication"): one user a line,
 *
 *   user:hash[:group,group…]
 *
 * where hash is bcrypt (`$2a$`, `$2b$`, `$2y$`, as `htpasswd -B` writes), argon2
 * (`$argon2id$`, `$argon2i$`, `$argon2d$`) or, for random access tokens only,
 * `$sha256$<64 hex digits>` (a fast hash is safe for a secret of 128 random
 * bits or more, never for a password a person chose). `#` starts a comment.
 * The file is re-read when it changes; one bad line is reported, not fatal.
 */
import { createHash } from 'node:crypto';
import { WatchedFile } from '../config/watched-file.js';
import { USER_NAME } from './http-basic.js';
import { VerifyPool, type HashRef } from './verify-pool.js';

export type HashKind = 'bcrypt' | 'argon2' | 'token';

export interface UserEntry {
  readonly user: string;
  readonly kind: HashKind;
  readonly hash: string;
  readonly groups: readonly string[];
}

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
const ARGON2 = /^\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
const TOKEN = /^\$sha256\$[0-9a-f]{64}$/;
const GROUP = /^[\w.@+-]{1,128}$/u;

/** Parses the file's text; lines that do not parse are returned as problems (without their content: it may hold a secret). */
export function parseUsersFile(text: string): { users: Map<string, UserEntry>; problems: string[] } {
  const users = new Map<string, UserEntry>();
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const parts = line.split(':');
    const [user = '', hash = '', groupList] = parts;
    const where = `line ${i + 1}`;
    if (parts.length < 2 || parts.length > 3) return problems.push(`${where}: expected user:hash[:groups]`);
    if (!USER_NAME.test(user)) return problems.push(`${where}: invalid user name`);
    if (users.has(user)) return problems.push(`${where}: user ${user} appears twice; the first line counts`);
    const kind: HashKind | undefined = BCRYPT.test(hash) ? 'bcrypt' : ARGON2.test(hash) ? 'argon2' : TOKEN.test(hash) ? 'token' : undefined;
    if (!kind) return problems.push(`${where}: user ${user}: not a bcrypt, argon2 or $sha256$ token hash`);
    const groups = groupList === undefined || groupList === '' ? [] : groupList.split(',').map((g) => g.trim());
    if (groups.some((g) => !GROUP.test(g))) return problems.push(`${where}: user ${user}: invalid group name`);
    users.set(user, { user, kind, hash, groups });
    return undefined;
  });
  return { users, problems };
}

/**
 * The slow hash failures are made to cost (src/auth/verify-pool.ts): one of
 * the file's bcrypt or argon2 hashes with the parameters most of its users
 * have (its result is never used), or a built-in bcrypt hash of cost 10 when
 * the file has none.
 */
export function padFor(users: ReadonlyMap<string, UserEntry>): HashRef {
  const byParams = new Map<string, { n: number; entry: UserEntry }>();
  for (const e of users.values()) {
    if (e.kind === 'token') continue;
    // bcrypt `$2b$10$`, argon2 `$argon2id$v=19$m=…,t=…,p=…$`: everything before the salt.
    const params = e.kind === 'bcrypt' ? e.hash.slice(0, 7) : e.hash.split('$').slice(0, 4).join('$');
    const seen = byParams.get(params);
    byParams.set(params, { n: (seen?.n ?? 0) + 1, entry: seen?.entry ?? e });
  }
  let best: { n: number; entry: UserEntry } | undefined;
  for (const v of byParams.values()) if (!best || v.n > best.n) best = v;
  return best ? { kind: best.entry.kind, hash: best.entry.hash } : DUMMY;
}

/** bcrypt of a random string, cost 10: the pad of a file without slow hashes. */
const DUMMY: HashRef = { kind: 'bcrypt', hash: '$2a$10$aK1DuIMTEtl0X6/2JvsrqORSnpJMsWm/nTFwL84QqZ89UOFtIvTK6' };

export interface UsersFileOptions {
  /** How long a verification result is remembered (0: never). */
  cacheMs: number;
  /** Most remembered results; the oldest go first. */
  cacheEntries?: number;
  /** Worker threads that verify passwords (auth.http.verifyWorkers). */
  workers?: number;
  /** Verifications that may wait for a worker; more are refused (auth.http.verifyQueue). */
  maxQueue?: number;
  now?: () => number;
}

/**
 * The users file, re-read when its modification time, size or inode changes.
 * bcrypt and argon2 are slow on purpose and git sends its credentials with
 * every request of a clone, so results are remembered for `cacheMs`, keyed by
 * a SHA-256 of user and password (the password itself is never kept), and
 * forgotten whenever the file changes. Verifications run in worker threads
 * (src/auth/verify-pool.ts), never on the event loop, and an unknown user or a
 * wrong token costs what a wrong password costs.
 */
export class UsersFile {
  private readonly file: WatchedFile<{ users: Map<string, UserEntry>; pad: HashRef }>;
  private readonly pool: VerifyPool;
  private readonly cache = new Map<string, { expires: number; result: Promise<UserEntry | undefined> }>();
  private readonly now: () => number;

  constructor(
    path: string,
    onProblem: (message: string) => void,
    private readonly options: UsersFileOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.pool = new VerifyPool({ workers: options.workers ?? 2, maxQueue: options.maxQueue ?? 64 });
    // A changed file forgets every remembered verification (a removed user or a new hash counts at once).
    this.file = new WatchedFile(
      path,
      (text) => {
        const { users, problems } = parseUsersFile(text);
        return { value: { users, pad: padFor(users) }, problems };
      },
      { users: new Map(), pad: DUMMY },
      onProblem,
      () => this.cache.clear(),
    );
  }

  /** A remembered result for these credentials (right or wrong), or undefined when they would have to be verified. */
  remembered(user: string, password: string): Promise<UserEntry | undefined> | undefined {
    // Looking at the file first: a changed file forgets what was remembered.
    this.file.get();
    const hit = this.cache.get(cacheKey(user, password));
    return hit && hit.expires > this.now() ? hit.result : undefined;
  }

  /**
   * The user's entry when the password is right; undefined otherwise. Rejects
   * with ServerBusyError when too many verifications wait for a worker (that
   * refusal is not remembered).
   */
  verify(user: string, password: string): Promise<UserEntry | undefined> {
    const { users, pad } = this.file.get();
    const key = cacheKey(user, password);
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) return hit.result;
    const entry = users.get(user);
    const result = this.pool.verify({ target: entry, password, pad }).then((ok) => (ok && entry ? entry : undefined));
    result.catch(() => {
      if (this.cache.get(key)?.result === result) this.cache.delete(key);
    });
    if (this.options.cacheMs > 0) {
      this.cache.delete(key);
      this.cache.set(key, { expires: now + this.options.cacheMs, result });
      const max = this.options.cacheEntries ?? 10_000;
      while (this.cache.size > max) this.cache.delete(this.cache.keys().next().value as string);
    }
    return result;
  }

  /** The groups the file gives `user` (a user identified otherwise, by a client certificate); none when it is not listed. */
  groupsOf(user: string): readonly string[] {
    return this.file.get().users.get(user)?.groups ?? [];
  }

  /** Stops the verification workers. */
  close(): Promise<void> {
    return this.pool.close();
  }
}

function cacheKey(user: string, password: string): string {
  return createHash('sha256').update(user, 'utf8').update('\0').update(password, 'utf8').digest('base64');
}
