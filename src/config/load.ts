import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, type Config } from './schema.js';

/**
 * Builds the one configuration object githa runs with: file, then the
 * environment overrides (GITHA_REDIS_URL), validated and deeply frozen.
 * Errors name the offending key, e.g. `backends.1.http: expected an http:// URL`.
 */
export function buildConfig(input: unknown, env: NodeJS.ProcessEnv = process.env, configFile?: string): Config {
  const raw = (typeof input === 'object' && input !== null ? structuredClone(input) : input) as Record<string, unknown>;
  if (env.GITHA_REDIS_URL && typeof raw === 'object' && raw !== null) {
    const redis = (typeof raw.redis === 'object' && raw.redis !== null ? raw.redis : {}) as Record<string, unknown>;
    // The environment names one Redis: it replaces a configured Sentinel set or Redis Cluster too.
    const { sentinels: _sentinels, cluster: _cluster, ...rest } = redis;
    raw.redis = { ...rest, url: env.GITHA_REDIS_URL };
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(`invalid configuration: ${formatIssues(result.error)}`);
  const { onInterruptedWrite, ...data } = result.data;
  const proxyId = data.proxyId ?? `${hostname()}:${process.pid}`;
  // docs/architecture.md "Write quorum": default a majority, so one lost backend never loses an acknowledged push.
  // Derived (not set): a repository with an assignment takes a majority of its assignment instead (src/cluster/assignment.ts).
  const writeQuorumDerived = data.replication.writeQuorum === undefined;
  const writeQuorum = data.replication.writeQuorum ?? Math.floor(data.backends.length / 2) + 1;
  const interruptions = onInterruptedWrite ? { ...data.interruptions, onInterruptedWrite } : data.interruptions;
  const file = configFile ? { configFile } : {};
  return deepFreeze({ ...data, ...file, proxyId, interruptions, replication: { ...data.replication, writeQuorum, writeQuorumDerived } }) as Config;
}

/** Reads the file named by `path`, or by GITHA_CONFIG when `path` is absent. */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const file = env.GITHA_CONFIG || path;
  if (!file) throw new ConfigError('no configuration: pass --config FILE or set GITHA_CONFIG');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`configuration ${file} is not valid YAML: ${(err as Error).message}`);
  }
  return buildConfig(doc ?? {}, env, resolve(file));
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`)
    .join('; ');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Splits "host:port" (IPv6 in brackets) for net.Server#listen. */
export function parseListen(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):?(\d+)$/.exec(address);
  if (!m) throw new ConfigError(`invalid listen address ${address}`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}
