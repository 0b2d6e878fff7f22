import { z } from 'zod';
import { DEFAULTS } from './defaults.js';
import { parseCidr } from './cidr.js';
import { parseMaxStartups } from './max-startups.js';
import { globToRegExp } from '../auth/glob.js';
import { tlsSchema } from './tls-schema.js';
import { backendSchema } from './backend-schema.js';
import { redisSchema } from './redis-schema.js';

export { backendSchema };

/** "host:port" or ":port" or "port"; IPv6 hosts in brackets. */
const listenAddress = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):?\d{1,5}$|^\d{1,5}$/, {
  message: 'expected "host:port"',
});

/** A `git config` key githa sets on repositories it creates (repositories.gitConfig). */
const gitConfigKey = z.string().regex(/^[A-Za-z][A-Za-z0-9-]*(\.[^\s\0'"\\]+)?\.[A-Za-z][A-Za-z0-9-]*$/, { message: 'expected a git config key such as http.receivepack' });
/** A positive whole number: durations in ms, counts and byte sizes alike. */
const positiveInt = z.number().int().positive();

/** A user or group name. */
const userName = z.string().regex(/^[\w.@+-]{1,128}$/u, { message: 'letters, digits, "_ . @ + -", up to 128' });
const accessLevel = z.enum(['none', 'read', 'write']);
/** A repository glob of an access rule (src/auth/glob.ts), checked at start-up. */
const repoPattern = z.string().superRefine((p, ctx) => {
  try {
    globToRegExp(p);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
/** Headers auth.http.userHeader may not name. */
const RESERVED_HEADERS = new Set(['authorization', 'host', 'content-length', 'content-type', 'content-encoding', 'transfer-encoding', 'connection', 'git-protocol', 'cookie', 'expect', 'te', 'upgrade']);

export const configSchema = z
  .object({
    listen: z
      .object({
        http: listenAddress.optional().default(DEFAULTS.listen.http),
        admin: listenAddress.optional().default(DEFAULTS.listen.admin),
        /** SSH front end; off when absent. */
        ssh: listenAddress.optional(),
        /** git:// front end; off when absent. */
        git: listenAddress.optional(),
        /** HTTPS front end (the HTTP front end's handler behind TLS, src/frontends/http/https.ts); off when absent, needs `tls`. */
        https: listenAddress.optional(),
        /** Peers (CIDR) whose connections start with a PROXY protocol header (src/frontends/proxy-listener.ts); empty: off. */
        proxyProtocolFrom: z
          .array(z.string().refine((s) => parseCidr(s) !== undefined, { message: 'expected an IP address or a CIDR range (10.0.0.0/8, 2001:db8::/32)' }))
          .default([...DEFAULTS.listen.proxyProtocolFrom]),
      })
      .strict()
      .default({ http: DEFAULTS.listen.http, admin: DEFAULTS.listen.admin, proxyProtocolFrom: [...DEFAULTS.listen.proxyProtocolFrom] }),
    /** TLS of listen.https (docs/security.md "TLS"). */
    tls: tlsSchema.optional(),
    redis: redisSchema,
    backends: z
      .array(backendSchema)
      .min(1, { message: 'at least one backend is required' })
      .refine((bs) => new Set(bs.map((b) => b.id)).size === bs.length, { message: 'backend ids must be unique' }),
    zone: z.string().min(1).optional(),
    /** This githa's name in markers and logs; defaults to hostname:pid. */
    proxyId: z.string().min(1).optional(),
    /** A local copy of the backend overrides, so `githa status` can tell when Redis lost them (src/state/overrides-file.ts). */
    backendOverridesFile: z.string().min(1).optional(),
    locks: z
      .object({ leaseMs: positiveInt.default(DEFAULTS.locks.leaseMs), waitMs: z.number().int().nonnegative().default(DEFAULTS.locks.waitMs) })
      .strict()
      .prefault({}),
    catchUp: z
      .object({
        readWaitMs: positiveInt.default(DEFAULTS.catchUp.readWaitMs),
        pairLockMs: positiveInt.default(DEFAULTS.catchUp.pairLockMs),
      })
      .strict()
      .prefault({}),
    health: z
      .object({
        downForMs: positiveInt.default(DEFAULTS.health.downForMs),
        intervalMs: positiveInt.default(DEFAULTS.health.intervalMs),
        timeoutMs: positiveInt.default(DEFAULTS.health.timeoutMs),
        failuresToDown: positiveInt.default(DEFAULTS.health.failuresToDown),
        successesToUp: positiveInt.default(DEFAULTS.health.successesToUp),
        ttlMs: positiveInt.default(DEFAULTS.health.ttlMs),
      })
      .strict()
      .prefault({}),
    replication: z
      .object({
        writeQuorum: z.number().int().positive().optional(),
        background: z.boolean().default(DEFAULTS.replication.background),
        concurrency: positiveInt.default(DEFAULTS.replication.concurrency),
        scanIntervalMs: positiveInt.default(DEFAULTS.replication.scanIntervalMs),
        retryMinMs: positiveInt.default(DEFAULTS.replication.retryMinMs),
        retryMaxMs: positiveInt.default(DEFAULTS.replication.retryMaxMs),
        quorumTimeoutMs: positiveInt.default(DEFAULTS.replication.quorumTimeoutMs),
        fanOut: z.boolean().default(DEFAULTS.replication.fanOut),
        fanOutStallMs: positiveInt.default(DEFAULTS.replication.fanOutStallMs),
      })
      .strict()
      .prefault({}),
    interruptions: z
      .object({
        onInterruptedWrite: z.enum(['adopt', 'freeze']).default(DEFAULTS.interruptions.onInterruptedWrite),
        staleAfterMs: positiveInt.default(DEFAULTS.interruptions.staleAfterMs),
        suspectGraceMs: positiveInt.default(DEFAULTS.interruptions.suspectGraceMs),
      })
      .strict()
      .prefault({}),
    /** Shorthand for interruptions.onInterruptedWrite. */
    onInterruptedWrite: z.enum(['adopt', 'freeze']).optional(),
    /** Repository lifecycle (docs/operations.md "Repository lifecycle"). */
    repositories: z
      .object({
        /** A push to a repository that exists nowhere creates it (on backends with `admin`), when the user may write there. */
        createOnPush: z.boolean().default(DEFAULTS.repositories.createOnPush),
        /** Where deleted copies go, relative to each backend's root (inside it: a rename within one file system). */
        trashDir: z.string().regex(/^\.[A-Za-z0-9._-]+$/, { message: 'a directory name starting with "." (repository names never do)' }).default(DEFAULTS.repositories.trashDir),
        /** `githa delete --purge` removes trashed copies older than this. */
        trashRetentionDays: z.number().nonnegative().default(DEFAULTS.repositories.trashRetentionDays),
        /** HEAD of a created repository: refs/heads/<this>. */
        initialBranch: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$/).default(DEFAULTS.repositories.initialBranch),
        /** `git config` lines set on every created repository. */
        gitConfig: z.record(gitConfigKey, z.string().regex(/^[^\0\n]*$/).max(1000)).default(DEFAULTS.repositories.gitConfig),
        /** `git init --shared=<this>` (e.g. "group" when the web server runs as another user of the same group). */
        shared: z.string().regex(/^(false|true|umask|group|all|world|everybody|0[0-7]{3})$/).optional(),
        /** Missing copies created and filled at once per githa (a new or replaced backend). */
        fillConcurrency: positiveInt.default(DEFAULTS.repositories.fillConcurrency),
      })
      .strict()
      .prefault({}),
    push: z
      .object({
        minBytesPerSecond: z.number().int().nonnegative().default(DEFAULTS.push.minBytesPerSecond),
        rateWindowMs: positiveInt.default(DEFAULTS.push.rateWindowMs),
        maxTransferMs: z.number().int().nonnegative().default(DEFAULTS.push.maxTransferMs),
        maxLocksPerUser: positiveInt.default(DEFAULTS.push.maxLocksPerUser),
      })
      .strict()
      .prefault({}),
    pushLog: z.object({ maxLength: positiveInt.default(DEFAULTS.pushLog.maxLength) }).strict().prefault({}),
    verify: z
      .object({
        intervalMs: z.number().int().nonnegative().default(DEFAULTS.verify.intervalMs),
        perSecond: z.number().positive().default(DEFAULTS.verify.perSecond),
      })
      .strict()
      .prefault({}),
    read: z
      .object({
        maxHeldListingBytes: positiveInt.default(DEFAULTS.read.maxHeldListingBytes),
        maxReplayBodyBytes: z.number().int().nonnegative().default(DEFAULTS.read.maxReplayBodyBytes),
      })
      .strict()
      .prefault({}),
    /** What githa holds in memory for its clients (docs/security.md "Memory budgets"). */
    memory: z
      .object({
        /** Bytes held for all requests at once; unset: a quarter of V8's heap limit (src/frontends/held-bytes.ts). */
        maxHeldBytes: positiveInt.optional(),
        maxHeldBytesPerRequest: positiveInt.default(DEFAULTS.memory.maxHeldBytesPerRequest),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        headersTimeoutMs: positiveInt.default(DEFAULTS.http.headersTimeoutMs),
        keepAliveTimeoutMs: positiveInt.default(DEFAULTS.http.keepAliveTimeoutMs),
        maxCommands: positiveInt.default(DEFAULTS.http.maxCommands),
        backendTimeoutMs: positiveInt.default(DEFAULTS.http.backendTimeoutMs),
        idleTimeoutMs: positiveInt.default(DEFAULTS.http.idleTimeoutMs),
        maxHeaderBytes: z.number().int().min(1024).default(DEFAULTS.http.maxHeaderBytes),
        maxConnectionsPerClient: positiveInt.default(DEFAULTS.http.maxConnectionsPerClient),
        maxConnections: positiveInt.default(DEFAULTS.http.maxConnections),
        maxInflatedBytes: positiveInt.default(DEFAULTS.http.maxInflatedBytes),
      })
      .strict()
      .prefault({}),
    ssh: z
      .object({
        /** Host keys, the same files on every githa so clients never see a key change. */
        hostKeys: z.array(z.string().min(1)).min(1).optional(),
        /** OpenSSH authorized_keys of the users; re-read when it changes. */
        authorizedKeys: z.string().min(1).optional(),
        /** OpenSSH authorized_keys of the operators (the console); re-read when it changes. Off when absent. */
        operatorKeys: z.string().min(1).optional(),
        /** The SSH login name that selects operatorKeys and the console; every other name is a Git user. */
        operatorUser: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/).default(DEFAULTS.ssh.operatorUser),
        /** githa's own private key for SSH backends. */
        backendKey: z.string().min(1).optional(),
        /** known_hosts with the backends' host keys (verified). */
        backendKnownHosts: z.string().min(1).optional(),
        /** Like OpenSSH's AuthorizedKeysCommand: an absolute program path and arguments (%u %t %k %f %%), run without a shell; prints authorized_keys lines. */
        authorizedKeysCommand: z
          .array(z.string().min(1).max(4096))
          .min(1)
          .refine((argv) => argv.length === 0 || argv[0]!.startsWith('/'), { message: 'the program must be an absolute path' })
          .optional(),
        authorizedKeysCommandTimeoutMs: positiveInt.default(DEFAULTS.ssh.authorizedKeysCommandTimeoutMs),
        authorizedKeysCommandMaxBytes: positiveInt.default(DEFAULTS.ssh.authorizedKeysCommandMaxBytes),
        authorizedKeysCommandCacheMs: z.number().int().nonnegative().default(DEFAULTS.ssh.authorizedKeysCommandCacheMs),
        /** Connection limits and timeouts (src/frontends/ssh/limits.ts). */
        maxConnections: positiveInt.default(DEFAULTS.ssh.maxConnections),
        maxStartups: z
          .union([positiveInt, z.string()])
          .refine((v) => parseMaxStartups(v) !== undefined, { message: 'expected a number or "start:rate:full" (rate 0-100, start <= full), as sshd MaxStartups' })
          .default(DEFAULTS.ssh.maxStartups),
        maxStartupsPerClient: positiveInt.default(DEFAULTS.ssh.maxStartupsPerClient),
        maxSessions: positiveInt.default(DEFAULTS.ssh.maxSessions),
        maxRequestsPerUser: positiveInt.default(DEFAULTS.ssh.maxRequestsPerUser),
        allowSshRsaSignatures: z.boolean().default(DEFAULTS.ssh.allowSshRsaSignatures),
        maxConnectionsPerClient: positiveInt.default(DEFAULTS.ssh.maxConnectionsPerClient),
        loginGraceMs: positiveInt.default(DEFAULTS.ssh.loginGraceMs),
        maxAuthTries: positiveInt.default(DEFAULTS.ssh.maxAuthTries),
        idleTimeoutMs: positiveInt.default(DEFAULTS.ssh.idleTimeoutMs),
      })
      .strict()
      .prefault({}),
    gitDaemon: z
      .object({
        allowPush: z.boolean().default(DEFAULTS.gitDaemon.allowPush),
        requestTimeoutMs: positiveInt.default(DEFAULTS.gitDaemon.requestTimeoutMs),
        idleTimeoutMs: positiveInt.default(DEFAULTS.gitDaemon.idleTimeoutMs),
        maxConnectionsPerClient: positiveInt.default(DEFAULTS.gitDaemon.maxConnectionsPerClient),
        maxConnections: positiveInt.default(DEFAULTS.gitDaemon.maxConnections),
      })
      .strict()
      .prefault({}),
    metrics: z.object({ statusRefreshMs: positiveInt.default(DEFAULTS.metrics.statusRefreshMs) }).strict().prefault({}),
    /** Authentication (docs/security.md "Authentication"). */
    auth: z
      .object({
        anonymousUser: userName.default(DEFAULTS.auth.anonymousUser),
        /** group → members; applies to SSH and HTTP users alike. */
        groups: z.record(userName, z.array(userName)).default({}),
        http: z
          .object({
            mode: z.enum(['passthrough', 'githa']).default(DEFAULTS.auth.http.mode),
            /** `user:hash[:groups]` lines; re-read when it changes. Needed by mode githa. */
            usersFile: z.string().min(1).optional(),
            realm: z.string().regex(/^[\x20-\x7e]{1,128}$/).refine((r) => !/["\\]/.test(r), { message: 'no quotes or backslashes' }).default(DEFAULTS.auth.http.realm),
            /** Mode githa: the verified user name is sent to backends in this header (e.g. X-Remote-User); a client's own is always removed. */
            userHeader: z
              .string()
              .regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/, { message: 'expected a header name' })
              .refine((h) => !RESERVED_HEADERS.has(h.toLowerCase()), { message: 'a header githa or HTTP itself needs' })
              .optional(),
            cacheMs: z.number().int().nonnegative().default(DEFAULTS.auth.http.cacheMs),
            verifyWorkers: z.number().int().min(1).max(64).default(DEFAULTS.auth.http.verifyWorkers),
            verifyQueue: positiveInt.default(DEFAULTS.auth.http.verifyQueue),
            failureWindowMs: positiveInt.default(DEFAULTS.auth.http.failureWindowMs),
            maxFailuresPerAddress: z.number().int().nonnegative().default(DEFAULTS.auth.http.maxFailuresPerAddress),
            maxFailuresPerUser: z.number().int().nonnegative().default(DEFAULTS.auth.http.maxFailuresPerUser),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Authorization per repository (docs/security.md "Authorization"); absent: everything allowed, the backends decide. */
    access: z
      .object({
        default: accessLevel.default(DEFAULTS.access.default),
        rules: z
          .array(
            z
              .object({
                repos: z.union([repoPattern, z.array(repoPattern).min(1)]),
                users: z.array(z.union([userName, z.literal('*')])).optional(),
                groups: z.array(userName).optional(),
                access: accessLevel,
              })
              .strict(),
          )
          .default([]),
      })
      .strict()
      .optional(),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(DEFAULTS.log.level) })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.replication.writeQuorum !== undefined && c.replication.writeQuorum > c.backends.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['replication', 'writeQuorum'],
        message: `cannot exceed the number of backends (${c.backends.length})`,
      });
    }
    if (c.auth.http.mode === 'githa' && !c.auth.http.usersFile) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'http', 'usersFile'], message: 'auth.http.mode githa needs auth.http.usersFile' });
    }
    if (c.listen.https && !c.tls) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'listen.https needs tls.cert and tls.key' });
    }
    if (c.listen.ssh && (!c.ssh.hostKeys || (!c.ssh.authorizedKeys && !c.ssh.authorizedKeysCommand))) {
      ctx.addIssue({ code: 'custom', path: ['ssh'], message: 'listen.ssh needs ssh.hostKeys and ssh.authorizedKeys or ssh.authorizedKeysCommand' });
    }
    c.backends.forEach((b, i) => {
      if (b.ssh && (!c.ssh.backendKey || !c.ssh.backendKnownHosts)) {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'ssh'], message: 'SSH backends need ssh.backendKey and ssh.backendKnownHosts' });
      }
      if (b.ssh && !/^ssh:\/\/[^@/\s]+@[^/\s]+\/.+/.test(b.ssh)) {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'ssh'], message: 'expected ssh://user@host[:port]/path' });
      }
      if (b.admin && (!c.ssh.backendKey || !c.ssh.backendKnownHosts)) {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'admin'], message: 'admin runs over SSH: it needs ssh.backendKey and ssh.backendKnownHosts' });
      }
      if (typeof b.admin === 'string' && !/^ssh:\/\/[^@/\s]+@[^/\s]+\/[^~]/.test(b.admin)) {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'admin'], message: 'expected ssh://user@host[:port]/absolute/root' });
      }
      if (b.admin === true && b.ssh && /^ssh:\/\/[^/]+\/~/.test(b.ssh)) {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'admin'], message: 'admin: true needs an absolute path in the ssh URL (not /~/…): name the admin account ("ssh://user@host/root")' });
      }
      if (b.git && !/^git:\/\/[^/\s]+(\/.*)?$/.test(b.git)) {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'git'], message: 'expected git://host[:port][/path]' });
      }
    });
  });

export type ConfigInput = z.input<typeof configSchema>;
export type BackendConfig = z.output<typeof backendSchema>;
type Parsed = z.output<typeof configSchema>;
type Resolved = Omit<Parsed, 'replication' | 'onInterruptedWrite'> & {
  proxyId: string;
  /** The file loadConfig read (absolute), for the operator console's CLI commands; not a config key. */
  configFile?: string;
  /** writeQuorum resolved: the configured value, or a majority of the backends. */
  replication: Parsed['replication'] & { writeQuorum: number };
};
export type Config = DeepReadonly<Resolved>;

type DeepReadonly<T> = T extends (infer E)[]
  ? ReadonlyArray<DeepReadonly<E>>
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
