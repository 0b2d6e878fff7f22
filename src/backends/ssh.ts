/**
 * githa as an SSH client of one backend (`sshd` running git-upload-pack /
 * git-receive-pack, git-shell or not): `ssh://user@host[:port]/abs/prefix`.
 *
 * - A pooled, authenticated ssh2 connection per backend, opened on first
 *   use; each request is a new exec channel on it (no handshake per request).
 *   Sequential requests all share one connection. OpenSSH allows 10 sessions
 *   per connection (MaxSessions), so when `maxChannels` channels are busy a
 *   further connection is opened, up to `maxConnections`; beyond that a
 *   request waits for a free channel, up to `timeoutMs`. Extra connections
 *   close after a minute without channels; the first one stays.
 * - A closed or broken connection is replaced on the next request, after a
 *   small back-off (100 ms doubling to 2 s) when connecting keeps failing.
 *   Keepalives (every 15 s, 3 missed) detect a dead peer; a request whose
 *   channel cannot be opened on a connection that served before is retried
 *   once on another (nothing reached a service yet).
 * - The host key is verified against an OpenSSH known_hosts file (plain and
 *   hashed entries, `[host]:port` for ports other than 22, `@revoked`), read
 *   again on every (re)connect; a host that is unknown or presents another
 *   key is refused. Only the known key types are offered, as OpenSSH does.
 * - The command is `git-upload-pack '<prefix>/<repo>'`, quoted like git
 *   (sq_quote); GIT_PROTOCOL goes in an `env` request (sshd must have
 *   `AcceptEnv GIT_PROTOCOL`, else the backend speaks v0 and githa copes).
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { BackendUnavailableError } from '../errors.js';
import { tcpGreeting } from './probe.js';
import { hostKeyAlgorithms, hostKeysFor, knownHostName, parseKnownHosts, verifyHostKey } from './known-hosts.js';
import { StreamGitClient } from './stream-client.js';
import type { BackendStream, OpenServiceOptions, StreamService } from './types.js';

const { Client } = ssh2;
type Client = InstanceType<typeof Client>;

export interface SshBackendOptions {
  id: string;
  /** `ssh://user@host[:port]/abs/prefix` (see parseSshBackendUrl). */
  url: string;
  /**
   * githa's private key (OpenSSH or PEM format): a Buffer holds the key
   * itself; a string is the path of the key file, read again on every
   * (re)connect (so a rotated key is picked up).
   */
  privateKey: Buffer | string;
  /** Passphrase of an encrypted private key. */
  passphrase?: string | undefined;
  /** Path of an OpenSSH known_hosts file with the backend's host key (read on every connect). */
  knownHosts: string;
  /** Longest wait at any one point: handshake, channel, each answer, each write, the exit. */
  timeoutMs: number;
  /** Keepalive interval on the pooled connection (default 15 s; 3 missed answers close it). */
  keepaliveIntervalMs?: number | undefined;
  /** Channels open at once on one connection (default 10, OpenSSH's MaxSessions default). */
  maxChannels?: number | undefined;
  /** Connections to the backend at most, opened as channels run out (default 4). */
  maxConnections?: number | undefined;
}

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

/** RFC 4253 4.2; `1.99` is a server that also speaks protocol 2.0. */
const SSH_GREETING = /^SSH-(?:2\.0|1\.99)-/;
const MIN_BACKOFF_MS = 100;
/** An extra connection (beyond the first) without channels for this long is closed. */
const IDLE_EXTRA_CONNECTION_MS = 60_000;
const MAX_BACKOFF_MS = 2_000;

/** One authenticated connection of the pool. */
interface PooledConnection {
  client: Client;
  /** Channels open on it (a slot is freed when the server closed the channel). */
  active: number;
  /** Channels ever opened on it: a connection that never opened one is "fresh". */
  execs: number;
  /** No new channels: it is closed once its last channel is. */
  retired: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

/** An SSH-reached backend: see the module comment. */
export class SshBackendClient extends StreamGitClient {
  readonly transport = 'ssh' as const;
  readonly target: SshBackendUrl;
  private readonly opts: SshBackendOptions;
  private readonly maxChannels: number;
  private readonly maxConnections: number;
  private readonly pool: PooledConnection[] = [];
  /** The handshake in progress (one at a time; concurrent requests share it). */
  private connecting: Promise<PooledConnection> | undefined;
  private readonly slotWaiters = new Set<() => void>();
  private closed = false;
  private failures = 0;
  private lastFailure = 0;
  /** Connections made so far (for metrics and tests). */
  connections = 0;

  constructor(opts: SshBackendOptions) {
    super(opts.id, opts.timeoutMs);
    this.opts = opts;
    this.target = parseSshBackendUrl(opts.url);
    this.maxChannels = opts.maxChannels ?? 10;
    this.maxConnections = opts.maxConnections ?? 4;
  }

  /** Connections open right now (for metrics and tests). */
  get openConnections(): number {
    return this.pool.length;
  }

  async openService(repo: string, service: StreamService, options: OpenServiceOptions = {}): Promise<BackendStream> {
    const command = sshExecCommand(service, sshRepositoryPath(this.target.prefix, repo));
    const env = options.protocol ? { GIT_PROTOCOL: options.protocol } : undefined;
    const signal = options.signal;
    for (let attempt = 0; ; attempt++) {
      const conn = await this.lease(signal);
      const fresh = conn.execs === 0;
      conn.execs++;
      let channel: ClientChannel;
      try {
        channel = await this.exec(conn.client, command, env, signal);
      } catch (err) {
        this.release(conn);
        if (signal?.aborted) throw signal.reason;
        if (err instanceof BackendUnavailableError) throw err;
        // The connection is dead or refuses channels (nothing reached a
        // service): stop using it, and try once more on another one.
        this.retire(conn);
        if (fresh || attempt > 0) {
          throw new BackendUnavailableError(`backend ${this.id}: cannot start ${service} over SSH: ${(err as Error).message}`, this.id, { cause: err });
        }
        continue;
      }
      return this.wrap(conn, channel);
    }
  }

  /** A fresh TCP connection and sshd's `SSH-2.0-` greeting; never the pool (a killed sshd master leaves pooled sessions alive). */
  override async probe(signal?: AbortSignal): Promise<void> {
    await tcpGreeting(this.target.host, this.target.port, { backendId: this.id, what: 'SSH', expect: SSH_GREETING, timeoutMs: this.timeoutMs, signal });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.slotWaiters]) wake();
    const pending = await this.connecting?.catch(() => undefined);
    const conns = [...this.pool];
    if (pending && !conns.includes(pending)) conns.push(pending);
    await Promise.all(
      conns.map(
        (conn) =>
          new Promise<void>((resolve) => {
            clearTimeout(conn.idleTimer);
            const timer = setTimeout(() => {
              conn.client.destroy();
              resolve();
            }, 2_000);
            conn.client.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            conn.client.end();
          }),
      ),
    );
    this.pool.length = 0;
  }

  // ---- the pool ---------------------------------------------------------------

  /**
   * A connection with a free channel slot (taken): the least busy one, else a
   * new one while there are fewer than maxConnections, else the first slot
   * freed within timeoutMs.
   */
  private async lease(signal: AbortSignal | undefined): Promise<PooledConnection> {
    const deadline = Date.now() + this.opts.timeoutMs;
    for (;;) {
      if (this.closed) throw new BackendUnavailableError(`backend ${this.id}: the SSH client is closed`, this.id);
      signal?.throwIfAborted();
      let best: PooledConnection | undefined;
      for (const conn of this.pool) {
        if (!conn.retired && conn.active < this.maxChannels && (!best || conn.active < best.active)) best = conn;
      }
      if (best) {
        best.active++;
        clearTimeout(best.idleTimer);
        best.idleTimer = undefined;
        return best;
      }
      if (this.pool.filter((c) => !c.retired).length < this.maxConnections) {
        if (!this.connecting) {
          const attempt = this.connect();
          this.connecting = attempt;
          const clear = (): void => {
            if (this.connecting === attempt) this.connecting = undefined;
          };
          attempt.then(clear, clear);
        }
        await (signal ? abortable(this.connecting, signal) : this.connecting);
        continue; // take a slot on it (or on another one freed meanwhile)
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new BackendUnavailableError(
          `backend ${this.id}: all ${this.maxConnections * this.maxChannels} SSH channels stayed busy for ${this.opts.timeoutMs} ms`,
          this.id,
        );
      }
      await this.waitForSlot(left, signal);
    }
  }

  private waitForSlot(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.slotWaiters.delete(done);
        resolve();
      };
      const onAbort = (): void => {
        done();
        reject(signal?.reason);
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.slotWaiters.add(done);
    });
  }

  /** Frees a channel slot of `conn`. */
  private release(conn: PooledConnection): void {
    conn.active--;
    if (conn.active === 0 && conn.retired) conn.client.end();
    else if (conn.active === 0 && this.pool[0] !== conn && !this.closed) {
      // Extra connections (opened under load) close after a while without channels.
      conn.idleTimer = setTimeout(() => this.retire(conn), IDLE_EXTRA_CONNECTION_MS);
      conn.idleTimer.unref();
    }
    const wake = this.slotWaiters.values().next().value;
    wake?.();
  }

  /** No new channels on `conn`; closed once its last channel is. */
  private retire(conn: PooledConnection): void {
    conn.retired = true;
    clearTimeout(conn.idleTimer);
    if (conn.active === 0) conn.client.end();
  }

  private remove(conn: PooledConnection): void {
    const i = this.pool.indexOf(conn);
    if (i >= 0) this.pool.splice(i, 1);
    clearTimeout(conn.idleTimer);
    for (const wake of [...this.slotWaiters]) wake(); // someone may open a new one
  }

  private async connect(): Promise<PooledConnection> {
    const wait = this.failures === 0 ? 0 : this.lastFailure + Math.min(MIN_BACKOFF_MS * 2 ** (this.failures - 1), MAX_BACKOFF_MS) - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    let client: Client;
    try {
      client = await this.handshake();
    } catch (err) {
      this.failures++;
      this.lastFailure = Date.now();
      throw err;
    }
    if (this.closed) {
      client.end();
      throw new BackendUnavailableError(`backend ${this.id}: the SSH client is closed`, this.id);
    }
    this.failures = 0;
    this.connections++;
    const conn: PooledConnection = { client, active: 0, execs: 0, retired: false, idleTimer: undefined };
    this.pool.push(conn);
    client.once('close', () => this.remove(conn));
    client.once('end', () => {
      conn.retired = true;
    });
    return conn;
  }

  /** Connects and authenticates one ssh2 Client; every failure is a BackendUnavailableError. */
  private async handshake(): Promise<Client> {
    const { host, port, username } = this.target;
    const name = knownHostName(host, port);
    let privateKey: Buffer;
    let knownHostsText: string;
    try {
      privateKey = typeof this.opts.privateKey === 'string' ? await readFile(this.opts.privateKey) : this.opts.privateKey;
      knownHostsText = await readFile(this.opts.knownHosts, 'utf8');
    } catch (err) {
      throw new BackendUnavailableError(`backend ${this.id}: cannot read the SSH key or known_hosts: ${(err as Error).message}`, this.id, { cause: err });
    }
    const lines = parseKnownHosts(knownHostsText);
    const known = hostKeysFor(lines, host, port).accepted;
    if (known.length === 0) {
      throw new BackendUnavailableError(
        `backend ${this.id}: no host key for ${name} in ${this.opts.knownHosts}; add it (e.g. ssh-keyscan -p ${port} ${host}) after checking it`,
        this.id,
      );
    }
    const algorithms = hostKeyAlgorithms(known.map((l) => l.type));
    let hostKeyError: BackendUnavailableError | undefined;
    const client = new Client();
    const config: ConnectConfig = {
      host,
      port,
      username,
      privateKey,
      passphrase: this.opts.passphrase,
      readyTimeout: this.opts.timeoutMs,
      keepaliveInterval: this.opts.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: 3,
      ident: 'githa_0.1',
      hostVerifier: (key: Buffer): boolean => {
        const verdict = verifyHostKey(lines, host, port, key);
        if (verdict.ok) return true;
        hostKeyError = new BackendUnavailableError(`backend ${this.id}: refusing SSH host ${name}: ${verdict.message}`, this.id);
        return false;
      },
    };
    if (algorithms.length > 0) config.algorithms = { serverHostKey: algorithms as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] };
    return new Promise<Client>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        client.destroy();
        if (hostKeyError) return reject(hostKeyError);
        const message = (err as Error)?.message ?? String(err);
        reject(new BackendUnavailableError(`backend ${this.id} is unreachable over SSH: ${message}`, this.id, { cause: err }));
      };
      // An 'error' listener for the connection's whole life (keepalive timeouts, resets).
      client.on('error', (err) => fail(err));
      client.once('close', () => fail(new Error('connection closed during the handshake')));
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        resolve(client);
      });
      try {
        client.connect(config);
      } catch (err) {
        fail(err);
      }
    });
  }

  private exec(client: Client, command: string, env: Record<string, string> | undefined, signal: AbortSignal | undefined): Promise<ClientChannel> {
    return new Promise<ClientChannel>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        // A connection that cannot open a channel in time hangs: close it.
        client.destroy();
        reject(new BackendUnavailableError(`backend ${this.id}: no SSH channel within ${this.opts.timeoutMs} ms`, this.id));
      }, this.opts.timeoutMs);
      const onAbort = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        client.exec(command, env ? { env } : {}, (err, channel) => {
          signal?.removeEventListener('abort', onAbort);
          clearTimeout(timer);
          if (settled) {
            channel?.close();
            return;
          }
          settled = true;
          if (err) reject(err);
          else resolve(channel);
        });
      } catch (err) {
        // "Not connected": the socket is gone.
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(err as Error);
      }
    });
  }

  private wrap(conn: PooledConnection, channel: ClientChannel): BackendStream {
    const client = conn.client;
    channel.on('error', () => {}); // surfaced by the session through 'end' and the exit status
    channel.stderr.on('error', () => {});
    let done = false;
    let resolveExit: (code: number | null) => void = () => {};
    const exit = new Promise<number | null>((resolve) => (resolveExit = resolve));
    const closed = (): void => {
      resolveExit(null);
      if (done) return;
      done = true;
      client.off('close', closed);
      this.release(conn);
    };
    channel.once('exit', (code: number | null) => resolveExit(typeof code === 'number' ? code : null));
    // 'close' comes once the server closed the channel and stdout was read to its end.
    channel.once('close', closed);
    client.once('close', closed);
    return {
      stdin: channel,
      stdout: channel,
      stderr: channel.stderr,
      exit,
      destroy: () => {
        // ssh2's destroy(): EOF and CHANNEL_CLOSE; the server closes the service's pipes.
        channel.destroy();
      },
    };
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
