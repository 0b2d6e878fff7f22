/**
 * Runs githa as a real process (`node dist/cli/main.js serve`) in front of a
 * dev cluster, as an operator would. dist/ is built by test/global-setup.ts.
 *
 *   const githa = await startGitha(cluster(), { zone: 'east', backends: { b1: { zone: 'east' } } });
 *   await git.clone(githa.url('team/app'));
 *   githa.logs();           // its JSON log lines
 *   await githa.stop();     // also done automatically when the test ends
 *
 * Every githa started in a test is stopped when that test finishes, pass or fail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { onTestFinished } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';

export interface GithaProcess {
  readonly pid: number;
  /** http://127.0.0.1:PORT */
  readonly httpUrl: string;
  /** http://127.0.0.1:PORT of the admin listener */
  readonly adminUrl: string;
  readonly configPath: string;
  readonly proc: ChildProcess;
  /** Smart-HTTP URL of a repository through this githa. */
  url(repo: string): string;
  /** Everything githa logged so far (pino JSON lines). */
  logs(): string;
  /** Parsed log lines. */
  logLines(): Array<Record<string, unknown>>;
  /** SIGTERM (default) or any signal; resolves when the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface StartGithaOptions {
  zone?: string;
  /** Per-backend overrides merged into the generated backend entries. */
  backends?: Record<string, Record<string, unknown>>;
  /** Only these backends (ids) are configured; default all. */
  only?: string[];
  /** Extra top-level config keys (merged shallowly). */
  config?: Record<string, unknown>;
  logLevel?: string;
  proxyId?: string;
  /** Do not stop it when the test finishes (caller stops it). */
  keep?: boolean;
}

const MAIN = resolve(import.meta.dirname, '../../dist/cli/main.js');
let counter = 0;

export async function startGitha(cluster: DevCluster, options: StartGithaOptions = {}): Promise<GithaProcess> {
  const n = ++counter;
  const backends = cluster.backends
    .filter((b) => !options.only || options.only.includes(b.id))
    .map((b) => ({ id: b.id, http: b.httpUrl, ...(options.backends?.[b.id] ?? {}) }));
  const config = {
    listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0' },
    redis: { url: cluster.redis.url },
    backends,
    proxyId: options.proxyId ?? `test-githa-${n}`,
    log: { level: options.logLevel ?? 'debug' },
    ...(options.zone ? { zone: options.zone } : {}),
    ...(options.config ?? {}),
  };
  const configPath = join(cluster.dir, `githa-${process.pid}-${n}.json`);
  // YAML is a superset of JSON: githa reads this file as YAML.
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const proc = spawn(process.execPath, [MAIN, 'serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GITHA_CONFIG: '' },
    // Its own process group, killed with the cluster (and by its watchdog if this process dies).
    detached: true,
  });
  const untrack = cluster.track(proc.pid!);
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<void>((res) =>
    proc.once('exit', () => {
      untrack();
      res();
    }),
  );

  const addresses = await new Promise<{ http: number; admin: number }>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`githa did not start within 15 s:\n${out.slice(-4000)}`)), 15_000);
    const check = (): void => {
      for (const line of out.split('\n')) {
        if (!line.includes('"githa listening"')) continue;
        const parsed = JSON.parse(line) as { http: { port: number }; admin: { port: number } };
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        proc.stderr!.off('data', check);
        res({ http: parsed.http.port, admin: parsed.admin.port });
        return;
      }
    };
    proc.stdout!.on('data', check);
    proc.stderr!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`githa exited with ${code} before listening:\n${out.slice(-4000)}`));
    });
  });

  const githa: GithaProcess = {
    pid: proc.pid!,
    httpUrl: `http://127.0.0.1:${addresses.http}`,
    adminUrl: `http://127.0.0.1:${addresses.admin}`,
    configPath,
    proc,
    url: (repo) => `http://127.0.0.1:${addresses.http}/${repo.endsWith('.git') ? repo : `${repo}.git`}`,
    logs: () => out,
    logLines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
  if (!options.keep) onTestFinished(() => githa.stop('SIGKILL'));
  return githa;
}
