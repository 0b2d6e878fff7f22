/**
 * githa as a child process (`node dist/cli/main.js serve --config FILE`), as
 * an operator runs it: its CPU seconds and peak RSS are its own, apart from
 * the benchmark driver's. Logs go to a file (info, the default level: the
 * per-request log line is part of what githa costs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DevCluster } from '../../src/demo/cluster.js';
import { GITHA_MAIN as MAIN } from '../support/paths.js';

export interface GithaChild {
  readonly name: string;
  readonly pid: number;
  readonly httpPort: number;
  readonly sshPort: number;
  readonly adminPort: number;
  /** The git:// port, when config.listen.git was given. */
  readonly gitPort: number | undefined;
  readonly logFile: string;
  /** http://127.0.0.1:P/<repo>.git */
  url(repo: string): string;
  /** ssh://git@127.0.0.1:P/<repo>.git */
  sshUrl(repo: string): string;
  stop(): Promise<void>;
}

export interface GithaChildOptions {
  name: string;
  cluster: DevCluster;
  hostKey: string;
  authorizedKeys: string;
  /** Redis URL (default the cluster's; the round-trip counter puts itself in between). */
  redisUrl?: string;
  /** Extra top-level config (replication, …). */
  config?: Record<string, unknown>;
  /** Write a V8 CPU profile (node --cpu-prof) into this directory when githa stops. */
  cpuProfDir?: string | undefined;
  /** Another build's dist/cli/main.js (tools/bench/data-path.ts compares two builds side by side); default this tree's. */
  main?: string | undefined;
}

export async function startGithaChild(o: GithaChildOptions): Promise<GithaChild> {
  const config = {
    listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0', ssh: '127.0.0.1:0' },
    ssh: { hostKeys: [o.hostKey], authorizedKeys: o.authorizedKeys, backendKey: o.cluster.ssh.clientKeyPath, backendKnownHosts: o.cluster.ssh.knownHostsPath },
    redis: { url: o.redisUrl ?? o.cluster.redis.url },
    backends: o.cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl, ssh: b.sshUrl })),
    proxyId: `bench-${o.name}`,
    log: { level: 'info' },
    ...(o.config ?? {}),
  };
  const configPath = join(o.cluster.dir, `bench-githa-${o.name}.json`);
  // YAML is a superset of JSON: githa reads this file as YAML.
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const logFile = join(o.cluster.dir, `bench-githa-${o.name}.log`);
  const fd = openSync(logFile, 'w');
  let proc: ChildProcess;
  try {
    const prof = o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`, `--cpu-prof-name=githa-${o.name}-${process.pid}.cpuprofile`] : [];
    proc = spawn(process.execPath, [...prof, o.main ?? MAIN, 'serve', '--config', configPath], {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, GITHA_CONFIG: '', GITHA_REDIS_URL: '' },
      // Its own process group, killed with the cluster (and by its watchdog if the driver dies).
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  const untrack = o.cluster.track(proc.pid!);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let ports: { http: number; ssh: number; admin: number; git: number | undefined } | undefined;
  const until = performance.now() + 30_000;
  while (!ports) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`githa ${o.name} exited before listening:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    if (performance.now() > until) throw new Error(`githa ${o.name} did not start within 30 s:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    const line = readFileSync(logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('"githa listening"'));
    if (line) {
      const parsed = JSON.parse(line) as { http: { port: number }; ssh: { port: number }; admin: { port: number }; git?: { port: number } };
      ports = { http: parsed.http.port, ssh: parsed.ssh.port, admin: parsed.admin.port, git: parsed.git?.port };
    } else await sleep(50);
  }
  const { http, ssh, admin, git } = ports;
  return {
    name: o.name,
    pid: proc.pid!,
    httpPort: http,
    sshPort: ssh,
    adminPort: admin,
    gitPort: git,
    logFile,
    url: (repo) => `http://127.0.0.1:${http}/${repo.endsWith('.git') ? repo : `${repo}.git`}`,
    sshUrl: (repo) => `ssh://git@127.0.0.1:${ssh}/${repo.endsWith('.git') ? repo : `${repo}.git`}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      untrack();
    },
  };
}
