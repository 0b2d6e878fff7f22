/**
 * What the read-only operator commands (status, repo, log, dataloss, backend)
 * share: the config, a quiet cluster core (no listeners, no probes), the
 * runtime overrides applied before anything is computed, the health other
 * githas share in Redis, and one exit path (EXIT in ../output.ts).
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { ClusterStateUnavailableError, GithaError } from '../../errors.js';
import { buildCluster, type ClusterParts } from '../../githa.js';
import { createLogger, type Logger } from '../../log.js';
import { BackendHealthStore, type SharedHealth } from '../../state/backend-health.js';
import { effectiveOverrides, OverrideStore, type StoredOverride } from '../../state/overrides.js';
import { describeRedis, redisReady } from '../../state/redis.js';
import { EXIT, stdio, type Streams } from '../output.js';
import { prettyLogStream } from '../pretty-log.js';

export interface Context {
  config: Config;
  parts: ClusterParts;
  overrides: OverrideStore;
  /** Stored overrides, already handed to the cluster. */
  stored: Map<string, StoredOverride>;
  /** Fresh health shared by the serving githas (absent: nobody vouches). */
  health: Map<string, SharedHealth>;
  streams: Streams;
}

/** `-c, --config` and `--json`, common to every operator command. */
export function common(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'configuration file (or GITHA_CONFIG)')
    .option('--json', 'print JSON for scripts')
    .exitOverride((err) => {
      // Bad arguments (commander's own exit status is 1) mean "could not run"; help and version are fine.
      process.exit(err.exitCode === 0 ? EXIT.OK : EXIT.FAILED);
    });
}

/** Thrown by a command to end with a message on stderr and an exit status. */
export class Exit extends Error {
  constructor(
    readonly status: number,
    message = '',
  ) {
    super(message);
  }
}

/**
 * Runs one command: opens the context, runs `fn`, closes everything, and
 * exits with what `fn` returned (a failure to run is EXIT.FAILED).
 */
export async function run(opts: { config?: string }, fn: (ctx: Context) => Promise<number>): Promise<never> {
  let status: number = EXIT.FAILED;
  let parts: ClusterParts | undefined;
  try {
    const config = loadConfig(opts.config);
    const log = cliLogger(config);
    parts = buildCluster(config, log);
    // Redis down (refused, or accepting but never answering) fails within redis.commandTimeoutMs, like any Redis call.
    const ready = await redisReady(parts.redis, config.redis.commandTimeoutMs);
    if (!ready) {
      throw new ClusterStateUnavailableError(
        `cluster state unavailable: Redis at ${describeRedis(config.redis)} did not answer within ${config.redis.commandTimeoutMs} ms (redis.commandTimeoutMs)`,
      );
    }
    const overrides = new OverrideStore(parts.redis, parts.state.keys, new Map(config.backends.map((b) => [b.id, { enabled: b.enabled, writable: b.writable }])));
    const stored = await overrides.readAll().catch((err: unknown) => {
      throw new ClusterStateUnavailableError('cluster state unavailable: cannot read the backend overrides', { cause: err });
    });
    parts.cluster.setOverrides(effectiveOverrides(stored));
    const health = await new BackendHealthStore(parts.redis, parts.state.keys, { proxyId: 'githa-cli', ttlMs: config.health.ttlMs, log }).readFresh(
      config.backends.map((b) => b.id),
    );
    // The serving githas' verdicts: a backend down there is down for this command too (placement gives it nothing new, docs/architecture.md "Placement").
    for (const h of health.values()) if (!h.up) parts.cluster.health.seed(h.id, false, h.detail);
    status = await fn({ config, parts, overrides, stored, health, streams: stdio });
  } catch (err) {
    if (err instanceof Exit) {
      if (err.message) stdio.err.write(`githa: ${err.message}\n`);
      status = err.status;
    } else if (err instanceof GithaError) {
      stdio.err.write(`githa: ${err.message}\n`);
      status = EXIT.FAILED;
    } else {
      stdio.err.write(`githa: ${(err as Error)?.stack ?? String(err)}\n`);
      status = EXIT.FAILED;
    }
  } finally {
    // The command's outcome is decided and printed; a failure to close the Redis
    // connections or backend clients cannot change it, and the process exits below.
    await parts?.close().catch(() => {});
  }
  process.exitCode = status;
  // Whatever still holds the event loop (a backend client's socket), the command is done once what it printed is written.
  stdio.out.write('', () => stdio.err.write('', () => process.exit(status)));
  setTimeout(() => process.exit(status), 1_000).unref();
  return new Promise<never>(() => {});
}

/**
 * The log of a CLI run: warnings and errors only (a serving githa's info
 * lines say nothing to the operator), as human lines on stderr
 * (src/cli/pretty-log.ts), never pino JSON among the command's output or its
 * progress.
 */
function cliLogger(config: Config): Logger {
  return createLogger(['trace', 'debug', 'info'].includes(config.log.level) ? 'warn' : config.log.level, prettyLogStream(stdio.err));
}

/** Epoch ms as an ISO time without milliseconds (UTC). */
export function isoTime(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return undefined;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** "3m ago", "2h ago", "in 4m" (relative to now). */
export function ago(ms: number | undefined, now = Date.now()): string | undefined {
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return undefined;
  const d = Math.abs(now - ms);
  const s = Math.round(d / 1000);
  const text = s < 60 ? `${s}s` : s < 3600 ? `${Math.round(s / 60)}m` : s < 172_800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86_400)}d`;
  return now >= ms ? `${text} ago` : `in ${text}`;
}

