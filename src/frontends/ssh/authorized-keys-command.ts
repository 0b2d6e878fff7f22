import { execFile } from 'node:child_process';
import { parseAuthorizedKeys, type AuthorizedKey } from './authorized-keys.js';

export interface AuthorizedKeysCommandOptions {
  /** Program and arguments; `%u` login name, `%t` key type, `%k` base64 key, `%f` SHA-256 fingerprint, `%%` a percent sign. */
  argv: readonly string[];
  timeoutMs: number;
  /** Output beyond this many bytes fails the lookup (the program is killed). */
  maxOutputBytes: number;
  /** How long an answer (a key found or not) is reused; 0 runs the program on every attempt. */
  cacheMs: number;
  /** At most this many answers are cached (the oldest go first). */
  maxCacheEntries?: number;
  /** Names a key's comment never gives (parseAuthorizedKeys). */
  reserved?: ReadonlySet<string>;
}

/** A login name as a program argument: never option-like, nothing but an ordinary user name. */
const LOGIN = /^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}$/;
/** A key type such as ssh-ed25519 or sk-ssh-ed25519@openssh.com. */
const KEY_TYPE = /^[a-z0-9][a-z0-9@.-]{0,63}$/;

export interface KeyQuery {
  login: string;
  /** The key's algorithm as the client named it. */
  algo: string;
  /** The key's wire form. */
  data: Buffer;
  /** SHA256:… of data. */
  fingerprint: string;
}

/** The argv for one query: placeholders replaced word by word (never joined, never a shell). */
export function expandArgv(argv: readonly string[], q: KeyQuery): string[] {
  const values: Record<string, string> = { u: q.login, t: q.algo, k: q.data.toString('base64'), f: q.fingerprint, '%': '%' };
  return argv.map((word, i) => (i === 0 ? word : word.replace(/%(.)/g, (m, c: string) => values[c] ?? m)));
}

/**
 * OpenSSH's AuthorizedKeysCommand for githa (sshd_config(5)): a program that
 * prints authorized_keys lines for the key a client offers, for sites that
 * keep keys in a directory service. Its output has the file's format, so the
 * user behind a key is found the same way (GITHA_USER option, comment, else
 * fingerprint). The program runs with execFile: no shell, placeholders
 * replaced in single arguments, a login name that is not an ordinary user
 * name (e.g. starting with `-`) is never passed. A failure (exit status,
 * timeout, too much output, a spawn error) refuses the key and is reported
 * through onProblem; it never throws.
 */
export class AuthorizedKeysCommand {
  private readonly cache = new Map<string, { until: number; entry: AuthorizedKey | undefined }>();
  private readonly inFlight = new Map<string, Promise<AuthorizedKey | undefined>>();

  constructor(
    private readonly options: AuthorizedKeysCommandOptions,
    private readonly onProblem: (message: string, fields: Record<string, unknown>) => void,
  ) {}

  find(q: KeyQuery): Promise<AuthorizedKey | undefined> {
    if (!LOGIN.test(q.login) || !KEY_TYPE.test(q.algo)) {
      this.onProblem('login name or key type not passed to authorizedKeysCommand', { login: q.login.slice(0, 64).replace(/[^\x20-\x7e]/g, '?') });
      return Promise.resolve(undefined);
    }
    // The user an entry maps to may depend on the login (%u): part of the cache key.
    const id = `${q.login}\0${q.algo}\0${q.data.toString('base64')}`;
    const now = performance.now();
    const cached = this.cache.get(id);
    if (cached && cached.until > now) return Promise.resolve(cached.entry);
    const pending = this.inFlight.get(id);
    if (pending) return pending;
    const run = this.run(q).then((entry) => {
      this.inFlight.delete(id);
      if (this.options.cacheMs > 0) this.remember(id, entry);
      return entry;
    });
    this.inFlight.set(id, run);
    return run;
  }

  private remember(id: string, entry: AuthorizedKey | undefined): void {
    this.cache.delete(id);
    this.cache.set(id, { until: performance.now() + this.options.cacheMs, entry });
    const max = this.options.maxCacheEntries ?? 10_000;
    while (this.cache.size > max) this.cache.delete(this.cache.keys().next().value as string);
  }

  private run(q: KeyQuery): Promise<AuthorizedKey | undefined> {
    const [file, ...args] = expandArgv(this.options.argv, q);
    const started = performance.now();
    return new Promise((resolve) => {
      const child = execFile(
        file as string,
        args,
        {
          shell: false,
          timeout: this.options.timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: this.options.maxOutputBytes,
          encoding: 'utf8',
          windowsHide: true,
          // Like sshd: a small, fixed environment; nothing of githa's (Redis URL, …) leaks.
          env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' },
        },
        (err, stdout) => {
          const ms = Math.round(performance.now() - started);
          if (err) {
            const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: number | string };
            const why =
              e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER'
                ? `more than ${this.options.maxOutputBytes} bytes of output`
                : e.killed || e.signal === 'SIGKILL'
                  ? `no answer within ${this.options.timeoutMs} ms`
                  : typeof e.code === 'number'
                    ? `exit status ${e.code}`
                    : (e.code ?? e.signal ?? e.message);
            // Never the output or the key itself: the fingerprint identifies the attempt.
            this.onProblem(`authorizedKeysCommand failed: ${why}; key refused`, { program: file, key: q.fingerprint, ms });
            resolve(undefined);
            return;
          }
          const { keys, problems } = parseAuthorizedKeys(String(stdout), this.options.reserved);
          if (problems.length > 0) this.onProblem(`authorizedKeysCommand printed ${problems.length} line(s) that are not keys`, { program: file, first: problems[0] });
          resolve(keys.find((k) => k.blob.equals(q.data) && k.key.type === q.algo) ?? keys.find((k) => k.blob.equals(q.data)));
        },
      );
      // Nothing to read on stdin: a program that tries gets EOF, not a wait until the timeout.
      child.stdin?.on('error', () => {});
      child.stdin?.end();
    });
  }
}
