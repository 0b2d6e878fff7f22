/**
 * githa as an SSH client of one backend (`sshd` running git-upload-pack /
 * git-receive-pack, git-shell or not): `ssh://user@host[:port]/abs/prefix`
 * (parsed, and the command quoted, in ssh-url.ts).
 *
 * - Connections come from a ChannelPool (channel-pool.ts): an authenticated
 *   ssh2 connection per backend, opened on first use; each request is a new
 *   exec channel on it (no handshake per request). OpenSSH allows 10 sessions
 *   per connection (MaxSessions), so `maxChannels` is 10 and up to
 *   `maxConnections` (4) connections are opened under load
 *   (docs/architecture.md, "Pooled backend connections").
 * - Keepalives (every 15 s, 3 missed) detect a dead peer; a request whose
 *   channel cannot be opened on a connection that served before is retried
 *   once on another (nothing reached a service yet).
 * - The host key is verified against an OpenSSH known_hosts file (plain and
 *   hashed entries, `[host]:port` for ports other than 22, `@revoked`), read
 *   again on every (re)connect; a host that is unknown or presents another
 *   key is refused. Only the known key types are offered, as OpenSSH does.
 * - The command is `git-upload-pack '<prefix>/<repo without .git>'` (git's
 *   enter_repo on the backend finds X/.git, X or X.git), quoted like git
 *   (sq_quote); GIT_PROTOCOL goes in an `env` request (sshd must have
 *   `AcceptEnv GIT_PROTOCOL`, else the backend speaks v0 and githa copes).
 */
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { BackendAdminError, BackendUnavailableError } from '../errors.js';
import { backendRepositoryName } from '../protocol/repository-name.js';
import { ChannelPool, type ChannelLease } from './channel-pool.js';
import { tcpGreeting } from './probe.js';
import { hostKeyAlgorithms, hostKeysFor, knownHostName, parseKnownHosts, verifyHostKey } from './known-hosts.js';
import { parseSshBackendUrl, sshExecCommand, sshRepositoryPath, type SshBackendUrl } from './ssh-url.js';
import { StreamGitClient } from './stream-client.js';
import type { BackendStream, OpenServiceOptions, StreamService } from './types.js';

export { parseSshBackendUrl, sqQuote, sshExecCommand, sshRepositoryPath, type SshBackendUrl } from './ssh-url.js';

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

/** What a command run with SshBackendClient.run printed, and its exit status (null: killed by a signal). */
export interface SshRunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** RFC 4253 4.2; `1.99` is a server that also speaks protocol 2.0. */
const SSH_GREETING = /^SSH-(?:2\.0|1\.99)-/;

/** An SSH-reached backend: see the module comment. */
export class SshBackendClient extends StreamGitClient {
  readonly transport = 'ssh' as const;
  readonly target: SshBackendUrl;
  private readonly opts: SshBackendOptions;
  private readonly pool: ChannelPool<Client>;

  constructor(opts: SshBackendOptions) {
    super(opts.id, opts.timeoutMs);
    this.opts = opts;
    this.target = parseSshBackendUrl(opts.url);
    this.pool = new ChannelPool<Client>({
      id: opts.id,
      label: 'SSH',
      connect: () => this.handshake(),
      maxChannels: opts.maxChannels ?? 10,
      maxConnections: opts.maxConnections ?? 4,
      timeoutMs: opts.timeoutMs,
    });
  }

  /** Connections made so far (for metrics and tests). */
  get connections(): number {
    return this.pool.connections;
  }

  /** Connections open right now (for metrics and tests). */
  get openConnections(): number {
    return this.pool.size;
  }

  /** Channels open right now on the pooled connections (githa_backend_ssh_channels). */
  get busyChannels(): number {
    return this.pool.busy;
  }

  async openService(repo: string, service: StreamService, options: OpenServiceOptions = {}): Promise<BackendStream> {
    const command = sshExecCommand(service, sshRepositoryPath(this.target.prefix, backendRepositoryName(repo)));
    const env = options.protocol ? { GIT_PROTOCOL: options.protocol } : undefined;
    const signal = options.signal;
    for (let attempt = 0; ; attempt++) {
      const lease = await this.pool.lease(signal);
      let channel: ClientChannel;
      try {
        channel = await this.exec(lease.connection, command, env, signal);
      } catch (err) {
        lease.release();
        if (signal?.aborted) throw signal.reason;
        if (err instanceof BackendUnavailableError) throw err;
        // The connection is dead or refuses channels (nothing reached a
        // service): stop using it, and try once more on another one.
        lease.retireConnection();
        if (lease.fresh || attempt > 0) {
          throw new BackendUnavailableError(`backend ${this.id}: cannot start ${service} over SSH: ${(err as Error).message}`, this.id, { cause: err });
        }
        continue;
      }
      return this.wrap(lease, channel);
    }
  }

  /**
   * Runs one command (a fixed program with quoted arguments: admin.ts) on a
   * pooled connection and collects its output; for githa's own commands,
   * never a Git service. Rejects with BackendUnavailableError when no channel
   * could be opened (nothing ran), BackendAdminError when the command ran
   * longer than `timeoutMs` or wrote more than `maxOutputBytes` (it is
   * stopped: the channel is closed).
   */
  async run(command: string, o: { signal?: AbortSignal | undefined; maxOutputBytes: number; timeoutMs: number; input?: string | undefined }): Promise<SshRunResult> {
    const lease = await this.pool.lease(o.signal);
    let channel: ClientChannel;
    try {
      channel = await this.exec(lease.connection, command, undefined, o.signal);
    } catch (err) {
      lease.release();
      if (o.signal?.aborted) throw o.signal.reason;
      if (!(err instanceof BackendUnavailableError)) lease.retireConnection();
      throw err instanceof BackendUnavailableError ? err : new BackendUnavailableError(`backend ${this.id}: cannot run a command over SSH: ${(err as Error).message}`, this.id, { cause: err });
    }
    const done = collect(channel, lease.connection, this.id, o).finally(() => lease.release());
    // The command's stdin: data (the admin `refs` names), else closed at once.
    channel.end(o.input ?? '');
    return done;
  }

  /** A fresh TCP connection and sshd's `SSH-2.0-` greeting; never the pool (a killed sshd master leaves pooled sessions alive). */
  override async probe(signal?: AbortSignal): Promise<void> {
    await tcpGreeting(this.target.host, this.target.port, { backendId: this.id, what: 'SSH', expect: SSH_GREETING, timeoutMs: this.timeoutMs, signal });
  }

  async close(): Promise<void> {
    await this.pool.close();
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

  private wrap(lease: ChannelLease<Client>, channel: ClientChannel): BackendStream {
    const client = lease.connection;
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
      lease.release();
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
        // ssh2 emits a channel's 'close' (which frees its slot) only once its stdout and
        // stderr were read to their end: a channel dropped unread (a listing held, then its
        // client gone) would keep its slot for the life of the pooled connection, and
        // 40 of them stall every SSH request (docs/security.md#ssh, "Backend channels").
        // What is left is read and discarded.
        channel.unpipe();
        channel.resume();
        channel.stderr.unpipe();
        channel.stderr.resume();
      },
    };
  }
}

/** Reads a command's stdout and stderr to their end and waits for its exit status, within the limits (see SshBackendClient.run). */
function collect(channel: ClientChannel, client: Client, id: string, o: { signal?: AbortSignal | undefined; maxOutputBytes: number; timeoutMs: number }): Promise<SshRunResult> {
  return new Promise<SshRunResult>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    let code: number | null = null;
    let settled = false;
    const finish = (fail?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      client.off('close', onLost);
      if (fail !== undefined) {
        channel.destroy();
        reject(fail);
        return;
      }
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    };
    const onAbort = (): void => finish(o.signal?.reason);
    // The connection died under the command: whether it ran to its end is unknown.
    const onLost = (): void => finish(new BackendAdminError(`backend ${id}: the SSH connection closed while the admin command ran`, id));
    client.once('close', onLost);
    const timer = setTimeout(() => finish(new BackendAdminError(`backend ${id}: the admin command did not finish within ${o.timeoutMs} ms`, id)), o.timeoutMs);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const take = (into: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > o.maxOutputBytes) return finish(new BackendAdminError(`backend ${id}: the admin command wrote more than ${o.maxOutputBytes} bytes`, id));
      into.push(chunk);
    };
    channel.on('data', take(out));
    channel.stderr.on('data', take(err));
    channel.on('error', (e: Error) => finish(new BackendAdminError(`backend ${id}: the admin command failed: ${e.message}`, id, { cause: e })));
    channel.stderr.on('error', () => {});
    channel.once('exit', (c: number | null) => (code = typeof c === 'number' ? c : null));
    // 'close' comes after the exit status and the end of both streams. It carries the
    // status too: 'exit' may have fired before exec() resolved and these listeners existed
    // (a quick command's reply can arrive in the same read as the exec confirmation).
    channel.once('close', (c?: number | null) => {
      if (code === null && typeof c === 'number') code = c;
      finish();
    });
  });
}
