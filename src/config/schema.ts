import { z } from 'zod';
import { DEFAULTS } from './defaults.js';

/** "host:port" or ":port" or "port"; IPv6 hosts in brackets. */
const listenAddress = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):?\d{1,5}$|^\d{1,5}$/, {
  message: 'expected "host:port"',
});

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), { message: 'expected an http:// or https:// URL' })
  // <base>/<repo>/info/refs is the smart endpoint: normalise to a trailing slash.
  .transform((u) => (u.endsWith('/') ? u : `${u}/`));

const backendId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, { message: 'letters, digits, "_", "." and "-", up to 63' });

export const backendSchema = z
  .object({
    id: backendId,
    http: httpUrl.optional(),
    ssh: z.string().optional(),
    git: z.string().optional(),
    zone: z.string().min(1).optional(),
    enabled: z.boolean().default(DEFAULTS.backendDefaults.enabled),
    writable: z.boolean().default(DEFAULTS.backendDefaults.writable),
    /** Service credentials githa uses for its own requests (catch-up, checksums). */
    httpAuth: z.object({ username: z.string(), password: z.string() }).strict().optional(),
  })
  .strict()
  .refine((b) => b.http || b.ssh || b.git, { message: 'a backend needs at least one endpoint (http, ssh or git)' });

const positiveMs = z.number().int().positive();

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
      })
      .strict()
      .default({ http: DEFAULTS.listen.http, admin: DEFAULTS.listen.admin }),
    redis: z
      .object({
        url: z.string().regex(/^rediss?:\/\//, { message: 'expected a redis:// URL' }).default(DEFAULTS.redis.url),
        prefix: z.string().regex(/^[A-Za-z0-9_.:-]*$/).default(DEFAULTS.redis.prefix),
        commandTimeoutMs: positiveMs.default(DEFAULTS.redis.commandTimeoutMs),
      })
      .strict()
      .prefault({}),
    backends: z
      .array(backendSchema)
      .min(1, { message: 'at least one backend is required' })
      .refine((bs) => new Set(bs.map((b) => b.id)).size === bs.length, { message: 'backend ids must be unique' }),
    zone: z.string().min(1).optional(),
    /** This githa's name in markers and logs; defaults to hostname:pid. */
    proxyId: z.string().min(1).optional(),
    locks: z
      .object({ leaseMs: positiveMs.default(DEFAULTS.locks.leaseMs), waitMs: z.number().int().nonnegative().default(DEFAULTS.locks.waitMs) })
      .strict()
      .prefault({}),
    catchUp: z
      .object({
        readWaitMs: positiveMs.default(DEFAULTS.catchUp.readWaitMs),
        pairLockMs: positiveMs.default(DEFAULTS.catchUp.pairLockMs),
      })
      .strict()
      .prefault({}),
    health: z
      .object({
        downForMs: positiveMs.default(DEFAULTS.health.downForMs),
        intervalMs: positiveMs.default(DEFAULTS.health.intervalMs),
        timeoutMs: positiveMs.default(DEFAULTS.health.timeoutMs),
        failuresToDown: positiveMs.default(DEFAULTS.health.failuresToDown),
        successesToUp: positiveMs.default(DEFAULTS.health.successesToUp),
        ttlMs: positiveMs.default(DEFAULTS.health.ttlMs),
      })
      .strict()
      .prefault({}),
    replication: z
      .object({
        writeQuorum: z.number().int().positive().optional(),
        background: z.boolean().default(DEFAULTS.replication.background),
        concurrency: positiveMs.default(DEFAULTS.replication.concurrency),
        scanIntervalMs: positiveMs.default(DEFAULTS.replication.scanIntervalMs),
        retryMinMs: positiveMs.default(DEFAULTS.replication.retryMinMs),
        retryMaxMs: positiveMs.default(DEFAULTS.replication.retryMaxMs),
        quorumTimeoutMs: positiveMs.default(DEFAULTS.replication.quorumTimeoutMs),
      })
      .strict()
      .prefault({}),
    interruptions: z
      .object({
        onInterruptedWrite: z.enum(['adopt', 'freeze']).default(DEFAULTS.interruptions.onInterruptedWrite),
        staleAfterMs: positiveMs.default(DEFAULTS.interruptions.staleAfterMs),
        suspectGraceMs: positiveMs.default(DEFAULTS.interruptions.suspectGraceMs),
      })
      .strict()
      .prefault({}),
    /** Shorthand for interruptions.onInterruptedWrite. */
    onInterruptedWrite: z.enum(['adopt', 'freeze']).optional(),
    pushLog: z.object({ maxLength: positiveMs.default(DEFAULTS.pushLog.maxLength) }).strict().prefault({}),
    verify: z
      .object({
        intervalMs: z.number().int().nonnegative().default(DEFAULTS.verify.intervalMs),
        perSecond: z.number().positive().default(DEFAULTS.verify.perSecond),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        headersTimeoutMs: positiveMs.default(DEFAULTS.http.headersTimeoutMs),
        keepAliveTimeoutMs: positiveMs.default(DEFAULTS.http.keepAliveTimeoutMs),
        maxCommands: positiveMs.default(DEFAULTS.http.maxCommands),
        backendTimeoutMs: positiveMs.default(DEFAULTS.http.backendTimeoutMs),
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
      })
      .strict()
      .prefault({}),
    gitDaemon: z.object({ allowPush: z.boolean().default(DEFAULTS.gitDaemon.allowPush) }).strict().prefault({}),
    metrics: z.object({ statusRefreshMs: positiveMs.default(DEFAULTS.metrics.statusRefreshMs) }).strict().prefault({}),
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
    if (c.listen.ssh && (!c.ssh.hostKeys || !c.ssh.authorizedKeys)) {
      ctx.addIssue({ code: 'custom', path: ['ssh'], message: 'listen.ssh needs ssh.hostKeys and ssh.authorizedKeys' });
    }
    c.backends.forEach((b, i) => {
      if (b.ssh && (!c.ssh.backendKey || !c.ssh.backendKnownHosts)) {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'ssh'], message: 'SSH backends need ssh.backendKey and ssh.backendKnownHosts' });
      }
      if (b.ssh && !/^ssh:\/\/[^@/\s]+@[^/\s]+\/.+/.test(b.ssh)) {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'ssh'], message: 'expected ssh://user@host[:port]/path' });
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
