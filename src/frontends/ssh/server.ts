import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server as NetServer } from 'node:net';
import ssh2, { type ServerChannel } from 'ssh2';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { GithaError, InvalidCommandError } from '../../errors.js';
import { isValidGitProtocol, parseSshCommand, protocolVersionFrom } from '../../protocol/request.js';
import { toClientError } from '../error-map.js';
import { serveStream, type ClientChannel, type StreamDeps } from '../stream/session.js';
import { namesWithAccess } from '../../auth/access.js';
import { SSH_ALGORITHMS, rsaHostKeyWarning } from './algorithms.js';
import { AuthorizedKeysCommand } from './authorized-keys-command.js';
import { AuthorizedKeysFile, fingerprintOf, type AuthorizedKey } from './authorized-keys.js';
import { ConnectionGuard } from './connection-guard.js';
import { replaceServerSigAlgs, serverSigAlgs } from './ext-info.js';
import { parseMaxStartups } from './limits.js';
import { rejectChannel, SessionBudget } from './sessions.js';
import { OperatorConsole } from './operator.js';


export interface SshFrontend {
  /** The TCP listener (connection limits first, then ssh2; src/frontends/ssh/connection-guard.ts). */
  server: NetServer;
  close(): Promise<void>;
}

/**
 * The SSH front end: public-key authentication against an authorized_keys
 * file, strict parsing of the exec command (never a shell), GIT_PROTOCOL
 * passed on, and the same cluster semantics as smart HTTP. Interactive logins
 * get a one-line greeting and are closed.
 */
export function createSshFrontend(config: Config, deps: StreamDeps, log: Logger): SshFrontend {
  const hostKeys = (config.ssh.hostKeys ?? []).map((path) => readFileSync(path));
  // A key's comment (`root@laptop`) never names a user the access rules name: GITHA_USER does (docs/security.md "SSH keys and user names").
  const reserved = namesWithAccess(config.access, config.auth.groups, config.auth.anonymousUser);
  const authorized = config.ssh.authorizedKeys ? new AuthorizedKeysFile(config.ssh.authorizedKeys, (message) => log.warn({ message }, 'authorized keys'), reserved) : undefined;
  // Users' keys kept elsewhere (OpenSSH's AuthorizedKeysCommand): asked when the file has no match; never for the operator login.
  const keysCommand = config.ssh.authorizedKeysCommand
    ? new AuthorizedKeysCommand(
        {
          argv: config.ssh.authorizedKeysCommand,
          timeoutMs: config.ssh.authorizedKeysCommandTimeoutMs,
          maxOutputBytes: config.ssh.authorizedKeysCommandMaxBytes,
          cacheMs: config.ssh.authorizedKeysCommandCacheMs,
          reserved,
        },
        (message, fields) => log.warn({ ...fields, message }, 'authorized keys command'),
      )
    : undefined;
  const userKey = async (login: string, algo: string, data: Buffer): Promise<AuthorizedKey | undefined> =>
    authorized?.find(algo, data) ?? (await keysCommand?.find({ login, algo, data, fingerprint: fingerprintOf(data) }));
  // The login name selects the key file: ssh.operatorUser (`ops`) is checked against ssh.operatorKeys only, any other name against the users' keys.
  const operatorKeys = config.ssh.operatorKeys ? new AuthorizedKeysFile(config.ssh.operatorKeys, (message) => log.warn({ message }, 'operator keys')) : undefined;
  const operatorConsole = new OperatorConsole(config, log.child({ component: 'operator-console' }));
  const observer = deps.cluster.observer;
  // Sessions per connection [MaxSessions] and requests per user: one user cannot take every backend channel (docs/security.md#ssh).
  const budget = new SessionBudget({ maxSessions: config.ssh.maxSessions, maxRequestsPerUser: config.ssh.maxRequestsPerUser });
  const sigAlgs = serverSigAlgs(config.ssh.allowSshRsaSignatures);

  const server = new ssh2.Server({ hostKeys, ident: 'githa', algorithms: SSH_ALGORITHMS }, (client, info) => {
    // Connection limits, login grace time, MaxAuthTries: undefined when this connection is refused.
    const controls = guard.attach(client, info);
    if (!controls) return;
    // The client's address: a trusted balancer's PROXY header's (src/frontends/proxy-listener.ts), else ssh2's info.ip.
    const clog = log.child({ conn: randomBytes(4).toString('hex'), ip: controls.ip });
    // A well-formed server-sig-algs naming only what githa accepts (src/frontends/ssh/ext-info.ts).
    if (!replaceServerSigAlgs(client, sigAlgs)) clog.warn('ssh2 internals changed: its own server-sig-algs list is sent');
    const sessions = budget.connection();
    // Exec channels still open. ssh2 emits a server channel's 'close' only once its input
    // was read to its end: when the connection goes, what is left is read and discarded,
    // so a request still holding a backend's listing learns at once that its client went.
    const live = new Set<ServerChannel>();
    client.once('close', () => {
      for (const channel of live) {
        channel.unpipe();
        channel.resume();
      }
      live.clear();
    });
    let user = '';
    let operator = false;
    const fail = (ctx: ssh2.AuthContext, counts: boolean): void => {
      if (!counts || !controls.authFailed()) ctx.reject(['publickey']);
    };
    client.on('authentication', (ctx) => {
      // OpenSSH opens with `none` to learn the methods: not a failure (as in sshd).
      if (ctx.method !== 'publickey') {
        fail(ctx, ctx.method !== 'none');
        return;
      }
      // RSA with SHA-1 ("ssh-rsa"; rsa-sha2-256/512 carry a hash): refused, as by OpenSSH >= 8.8, whether the
      // client asks about the key or signs (ssh2 gives no hash then).
      if (ctx.key.algo === 'ssh-rsa' && ctx.hashAlgo === undefined && !config.ssh.allowSshRsaSignatures) {
        clog.info({ login: ctx.username.slice(0, 64), algo: 'ssh-rsa' }, 'ssh-rsa (SHA-1) signature algorithm refused; use rsa-sha2-256/512');
        observer.sshRefused('ssh-rsa');
        fail(ctx, true);
        return;
      }
      const asOperator = operatorKeys !== undefined && ctx.username === config.ssh.operatorUser;
      const lookup = asOperator ? Promise.resolve(operatorKeys.find(ctx.key.algo, ctx.key.data)) : userKey(ctx.username, ctx.key.algo, ctx.key.data);
      lookup.then(
        (entry) => {
          if (!entry) {
            clog.info({ login: ctx.username.slice(0, 64), algo: ctx.key.algo }, 'ssh key refused');
            fail(ctx, true);
            return;
          }
          // Without a signature the client only asks whether the key would do.
          if (!ctx.signature || !ctx.blob) {
            ctx.accept();
            return;
          }
          // rsa-sha2-256/512: verify with the hash the client signed with.
          if (entry.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo as never) !== true) {
            clog.warn({ login: ctx.username.slice(0, 64), key: entry.fingerprint }, 'ssh signature invalid');
            fail(ctx, true);
            return;
          }
          user = entry.user;
          operator = asOperator;
          controls.authenticated();
          ctx.accept();
        },
        (err: unknown) => {
          clog.error({ err: (err as Error)?.message }, 'ssh key lookup failed');
          fail(ctx, true);
        },
      );
    });
    client.on('ready', () => {
      clog.debug({ user, operator }, 'ssh authenticated');
      client.on('session', (acceptSession, rejectSession) => {
        if (!sessions.take()) {
          clog.warn({ user, max: config.ssh.maxSessions }, 'ssh session refused: too many on this connection');
          observer.sshRefused('sessions');
          rejectChannel(client, rejectSession, `githa: too many sessions on this connection (at most ${config.ssh.maxSessions})`);
          return;
        }
        const session = acceptSession();
        // A session without an exec is released with its connection (ssh2 tells nothing else of it).
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          sessions.release();
        };
        if (operator) {
          operatorConsole.handleSession(session, user, clog);
          return;
        }
        let protocol: string | undefined;
        const refusedEnv: string[] = [];
        session.on('env', (accept, _reject, env) => {
          // Only GIT_PROTOCOL reaches a backend. OpenSSH clients send LANG and LC_*
          // by default: ignored. Anything else makes the command fail with a clear
          // message (a refused env request is invisible to OpenSSH users).
          accept?.();
          if (env.key === 'GIT_PROTOCOL' && isValidGitProtocol(env.val)) protocol = env.val;
          else if (!/^(LANG|LC_[A-Z]+)$/.test(env.key)) {
            refusedEnv.push(env.key.replace(/[^\w.-]/g, '?').slice(0, 64));
            clog.info({ key: env.key.slice(0, 64) }, 'ssh env refused');
          }
        });
        session.on('pty', (accept) => accept?.());
        session.on('window-change', (accept) => accept?.());
        session.on('shell', (accept) => {
          const channel = accept();
          channel.once('close', release);
          channel.stderr.write(`githa: hi ${user}, this host serves Git only; there is no shell here.\r\n`);
          channel.exit(1);
          channel.end();
        });
        session.on('subsystem', (_accept, reject) => reject());
        session.on('exec', (accept, _reject, { command }) => {
          const channel = accept();
          live.add(channel);
          channel.once('close', () => {
            live.delete(channel);
            release();
          });
          const started = performance.now();
          const done = budget.request(user);
          if (!done) {
            clog.warn({ user, max: config.ssh.maxRequestsPerUser }, 'ssh request refused: too many of this user at once');
            observer.sshRefused('user-requests');
            void clientChannel(channel).refuse(`too many requests of user ${user} at once (at most ${config.ssh.maxRequestsPerUser}); try again when some have finished`);
            return;
          }
          handleExec(command, channel, user, protocol, refusedEnv, clog, controls.ip)
            .then(
              (fields) => clog.info({ user, ...fields, ms: Math.round(performance.now() - started) }, 'request'),
              (err: unknown) => clog.error({ err: (err as Error)?.message }, 'ssh exec failed'),
            )
            .finally(done);
        });
      });
    });
    client.on('error', (err) => clog.debug({ err: err.message }, 'ssh connection error'));
  });

  async function handleExec(
    command: string,
    channel: ServerChannel,
    user: string,
    protocol: string | undefined,
    refusedEnv: readonly string[],
    clog: Logger,
    ip: string,
  ): Promise<Record<string, unknown>> {
    const ch = clientChannel(channel);
    if (refusedEnv.length > 0) {
      await ch.refuse(`environment variable ${refusedEnv.join(', ')} is not accepted; githa passes on GIT_PROTOCOL only`);
      return { outcome: 'env-refused' };
    }
    let parsed;
    try {
      parsed = parseSshCommand(command);
    } catch (err) {
      const e = err instanceof GithaError ? err : new InvalidCommandError('invalid command');
      clog.info({ code: e.code }, 'ssh command refused');
      await ch.refuse(e instanceof InvalidCommandError || e.code.endsWith('UNKNOWN_SERVICE') ? `${e.message}; githa serves git-upload-pack, git-receive-pack and git-upload-archive only` : e.message);
      return { outcome: e.code };
    }
    const fields = { repo: parsed.repo, service: parsed.service, protocolVersion: protocolVersionFrom(protocol) };
    try {
      const result = await serveStream({ ...deps, log: clog, maxHeldListingBytes: config.read.maxHeldListingBytes, maxHeldRequestBytes: config.read.maxReplayBodyBytes }, { repo: parsed.repo, service: parsed.service, protocol, user, authenticated: true, transport: 'ssh', ip }, ch);
      return { ...fields, ...result };
    } catch (err) {
      const e = toClientError(err);
      // The client may have gone already (the usual cause of the failure); the request
      // is logged with its outcome by the caller either way.
      await ch.refuse(e.message).catch((refuseErr: unknown) => clog.debug({ err: (refuseErr as Error)?.message }, 'ssh refusal not delivered'));
      return { ...fields, outcome: e.code };
    }
  }

  const guard = new ConnectionGuard(
    server,
    {
      maxConnections: config.ssh.maxConnections,
      maxStartups: parseMaxStartups(config.ssh.maxStartups)!, // checked by the config schema
      maxStartupsPerClient: config.ssh.maxStartupsPerClient,
      maxConnectionsPerClient: config.ssh.maxConnectionsPerClient,
      loginGraceMs: config.ssh.loginGraceMs,
      maxAuthTries: config.ssh.maxAuthTries,
      idleTimeoutMs: config.ssh.idleTimeoutMs,
      onRefused: (limit) => observer.sshRefused(limit),
      proxyProtocol: { trusted: config.listen.proxyProtocolFrom },
    },
    log,
  );
  const rsaWarning = rsaHostKeyWarning(hostKeys.map((k) => ssh2.utils.parseKey(k)).flatMap((k) => (k instanceof Error ? [] : Array.isArray(k) ? k : [k])));
  if (rsaWarning) log.warn(rsaWarning);

  return {
    server: guard.listener,
    close: () =>
      new Promise<void>((resolve) => {
        operatorConsole.closeAll();
        guard.listener.close(() => resolve());
      }),
  };
}

/** An SSH exec channel as a ClientChannel: stdout drained, then exit status, then EOF and close. */
function clientChannel(channel: ServerChannel): ClientChannel {
  let finished = false;
  const finish = async (code: number): Promise<void> => {
    if (finished || channel.destroyed) return;
    finished = true;
    await drained(channel);
    channel.exit(code);
    channel.end();
    // The exchange is over: what the client still sends is read and discarded, so ssh2
    // can emit 'close' when the client closes the channel (it waits for the input's end).
    channel.resume();
  };
  return {
    input: channel,
    output: channel,
    errors: channel.stderr,
    finish,
    async refuse(message: string) {
      if (finished || channel.destroyed) return;
      channel.stderr.write(`githa: ${message}\n`);
      await finish(128);
    },
  };
}

/** Resolves once every byte written so far has been handed to the SSH connection. */
function drained(channel: ServerChannel): Promise<void> {
  return new Promise((resolve) => {
    if (channel.writableLength === 0) resolve();
    else channel.write(Buffer.alloc(0), () => resolve());
  });
}
