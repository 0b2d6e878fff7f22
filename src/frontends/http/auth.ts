import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { AccessPolicy, type Identity } from '../../auth/access.js';
import { basicChallenge, parseBasicAuthorization } from '../../auth/http-basic.js';
import { FailureThrottle } from '../../auth/throttle.js';
import { UsersFile } from '../../auth/users-file.js';
import type { Observer } from '../../cluster/observer.js';
import type { Config } from '../../config/schema.js';
import { AuthenticationRequiredError, AuthenticationThrottledError, ServerBusyError, type GithaError } from '../../errors.js';
import type { Service } from '../../protocol/request.js';
import type { LentCredentials } from '../../backends/types.js';
import { clientAddress } from '../proxy-listener.js';
import { clientKey } from './limits.js';
import type { HeaderEditor } from './headers.js';
import { httpsUser } from './https.js';

/** Who sent an HTTP request, and the name the logs and the push log record. */
export interface HttpCaller {
  identity: Identity;
  /** Mode githa: the verified user (or the anonymous name). Passthrough: the unverified Basic user name, as before. */
  user: string;
}

/**
 * Authentication and authorization of smart-HTTP requests (docs/security.md).
 *
 * - `passthrough` (default): githa verifies nothing; Authorization goes to the
 *   backend, which decides. Access rules then see every HTTP request as the
 *   anonymous identity: an unverified name must not grant anything.
 * - `githa`: Basic credentials are checked against auth.http.usersFile; missing
 *   ones where access needs them, and wrong ones, get 401 with a challenge so
 *   credential helpers work. The client's Authorization never reaches a
 *   backend: the backend's own service credentials (backends[].httpAuth) and
 *   the verified user name (auth.http.userHeader) go instead. Passwords are
 *   verified in worker threads, and failed logins are throttled per client
 *   address and per user name (docs/security.md "Brute force").
 *
 * In either mode, a client certificate verified against tls.clientCa
 * (listen.https) identifies its user (src/auth/client-cert.ts) as verified
 * Basic credentials would: githa verified it. Basic credentials sent along
 * are then not checked (in mode githa they never reach a backend anyway).
 */
export class HttpAuth {
  readonly mode: 'passthrough' | 'githa';
  readonly challenge: string;
  private readonly users: UsersFile | undefined;
  private readonly throttle: FailureThrottle;
  private readonly userHeader: string | undefined;
  private readonly serviceAuth: ReadonlyMap<string, string>;
  private readonly callers = new WeakMap<IncomingMessage, string>();
  /** Client certificates identify users (tls.clientCertificates not `off`); the CN → user map, when configured. */
  private readonly certificates: { users: Readonly<Record<string, string>> | undefined } | undefined;

  constructor(
    config: Config,
    readonly policy: AccessPolicy,
    log: Logger,
    private readonly observer: Pick<Observer, 'authFailure'>,
  ) {
    this.mode = config.auth.http.mode;
    this.challenge = basicChallenge(config.auth.http.realm);
    this.userHeader = config.auth.http.userHeader?.toLowerCase();
    this.users =
      this.mode === 'githa' && config.auth.http.usersFile
        ? new UsersFile(config.auth.http.usersFile, (message) => log.warn({ message }, 'users file'), {
            cacheMs: config.auth.http.cacheMs,
            workers: config.auth.http.verifyWorkers,
            maxQueue: config.auth.http.verifyQueue,
          })
        : undefined;
    this.certificates = config.tls && config.tls.clientCertificates !== 'off' ? { users: config.tls.clientUsers } : undefined;
    const h = config.auth.http;
    this.throttle = new FailureThrottle({ windowMs: h.failureWindowMs, perAddress: h.maxFailuresPerAddress, perUser: h.maxFailuresPerUser });
    this.serviceAuth = new Map(
      config.backends.flatMap((b) => (b.httpAuth ? [[b.id, `Basic ${Buffer.from(`${b.httpAuth.username}:${b.httpAuth.password}`).toString('base64')}`] as const] : [])),
    );
  }

  /** Establishes the caller; in mode githa, wrong or unusable credentials are a 401. */
  async identify(req: IncomingMessage): Promise<HttpCaller> {
    const creds = parseBasicAuthorization(req.headers.authorization);
    const certified = this.certificates ? httpsUser(req.socket, this.certificates.users) : undefined;
    let caller: HttpCaller;
    if (certified !== undefined) {
      // The users file's groups apply to this name as they would to its Basic login.
      caller = { identity: this.policy.identify(certified, true, this.users?.groupsOf(certified)), user: certified };
    } else if (this.mode === 'passthrough' || !this.users) {
      caller = { identity: this.policy.anonymous(), user: creds.kind === 'basic' ? creds.user : 'anonymous' };
    } else if (creds.kind === 'none') {
      caller = { identity: this.policy.anonymous(), user: this.policy.anonymousUser };
    } else {
      const name = creds.kind === 'basic' ? creds.user : undefined;
      this.callers.set(req, name ?? 'invalid-credentials');
      const entry = await this.check(clientKey(clientAddress(req.socket)), creds.kind === 'basic' ? creds : undefined);
      caller = { identity: this.policy.identify(entry.user, true, entry.groups), user: entry.user };
    }
    this.callers.set(req, caller.user);
    return caller;
  }

  /**
   * The entry of verified credentials, or a refusal: 401 when wrong, 429 when
   * the address or the user has failed too often lately (nothing is verified
   * then, unless these very credentials are remembered as right), 503 when too
   * many verifications wait for a worker.
   */
  private async check(address: string, creds: { user: string; password: string } | undefined): Promise<{ user: string; groups: readonly string[] }> {
    const users = this.users!;
    const known = creds && users.remembered(creds.user, creds.password);
    // Only credentials remembered as right pass a throttled address or user: a remembered wrong guess is refused
    // unchecked like any other (it would otherwise be a free, unthrottled way to keep guessing).
    if (!(known && (await known.catch(() => undefined)))) {
      const wait = this.throttle.blockedFor(address, creds?.user);
      if (wait > 0) {
        this.observer.authFailure('throttled');
        const seconds = Math.ceil(wait / 1000);
        throw new AuthenticationThrottledError(`too many failed logins from your address or for this user; try again in ${seconds} s`, seconds);
      }
    }
    let entry;
    try {
      entry = creds ? await (known ?? users.verify(creds.user, creds.password)) : undefined;
    } catch (err) {
      if (err instanceof ServerBusyError) this.observer.authFailure('busy');
      throw err;
    }
    if (!entry) {
      this.throttle.fail(address, creds?.user);
      this.observer.authFailure('wrong');
      throw new AuthenticationRequiredError('authentication failed: wrong user name or password');
    }
    this.throttle.succeed(entry.user);
    return entry;
  }

  /** Stops the password-verification workers. */
  async close(): Promise<void> {
    await this.users?.close();
  }

  /** The name for the log line of a request that failed (never a password). */
  logUser(req: IncomingMessage): string {
    return this.callers.get(req) ?? 'anonymous';
  }

  /**
   * Why this caller may not use `service` on `repo` (before anything touches
   * the cluster), or undefined. In mode githa an anonymous caller that lacks
   * access is asked for credentials (401) — for a missing repository too, since
   * the decision rests on the name alone.
   */
  denial(caller: HttpCaller, repo: string, service: Service): GithaError | undefined {
    const denied = this.policy.denial(caller.identity, repo, service);
    if (!denied) return undefined;
    if (this.mode === 'githa' && !caller.identity.authenticated) return new AuthenticationRequiredError('authentication required');
    return denied;
  }

  /**
   * Passthrough: the client's own credentials (Authorization, Cookie), lent to
   * githa's listing of a repository it has no record of yet, so the backend that
   * decides sees them as it would directly (docs/security.md "Authentication").
   * Mode githa: none — the client's credentials are githa's, never a backend's.
   */
  lend(req: IncomingMessage): LentCredentials | undefined {
    if (this.mode === 'githa') return undefined;
    const { authorization, cookie } = req.headers;
    if (!authorization && !cookie) return undefined;
    return { authorization, cookie };
  }

  /**
   * Whether a backend's Set-Cookie reaches the client: in passthrough, where the
   * client's Cookie goes to the backend, both go (session cookies can be a host's
   * authentication); in mode githa neither does (docs/security.md "Cookies").
   */
  get relaysCookies(): boolean {
    return this.mode !== 'githa';
  }

  /** Edits a request to a backend: in mode githa, githa's service credentials and the verified user replace the client's. */
  backendHeaders(caller: HttpCaller, backendId: string): (proxyReq: HeaderEditor) => void {
    return (proxyReq) => {
      if (this.userHeader) proxyReq.removeHeader(this.userHeader);
      if (this.mode !== 'githa') return;
      proxyReq.removeHeader('authorization');
      proxyReq.removeHeader('cookie');
      const service = this.serviceAuth.get(backendId);
      if (service) proxyReq.setHeader('authorization', service);
      if (this.userHeader && caller.identity.authenticated) proxyReq.setHeader(this.userHeader, caller.user);
    };
  }
}
