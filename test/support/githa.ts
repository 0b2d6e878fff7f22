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
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { onTestFailed, onTestFinished } from 'vitest';
import type { DevCluster } from '../../src/demo/cluster.js';
import { generateKey, knownHostsLine } from '../../src/demo/ssh.js';

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
  /** Port of the SSH front end (when started with `ssh: true`). */
  readonly sshPort?: number;
  /** Port of the HTTPS front end (when started with `https`). */
  readonly httpsPort?: number;
  /** https://127.0.0.1:PORT/<repo>.git */
  httpsUrl(repo: string): string;
  /** Port of the git:// front end (when started with `git`). */
  readonly gitPort?: number;
  /** ssh://git@127.0.0.1:PORT/<repo>.git */
  sshUrl(repo: string): string;
  /** git://127.0.0.1:PORT/<repo>.git */
  gitUrl(repo: string): string;
  /** known_hosts with this githa's SSH host key and every backend's (for GitClient.forCluster's knownHostsPath). */
  readonly knownHostsPath: string;
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
  /** Start the SSH front end (host key shared by every githa of the cluster). */
  ssh?: boolean;
  /** Start the HTTPS front end (listen.https) with this `tls` section. */
  https?: Record<string, unknown>;
  /** Start the git:// front end; `{ allowPush: true }` enables receive-pack over it. */
  git?: boolean | { allowPush: boolean };
  /** Contents of githa's authorized_keys (default: the cluster's client key as user "tester"). */
  authorizedKeys?: string;
  /** Contents of githa's ssh.operatorKeys file (the operator console); none when absent. */
  operatorKeys?: string;
  /** Which backend endpoints githa is told about (default: all three). */
  endpoints?: Array<'http' | 'ssh' | 'git'>;
  /** Do not stop it when the test finishes (caller stops it). */
  keep?: boolean;
  /**
   * One copy per push and no background replication (writeQuorum 1,
   * replication.background false): for tests of versions, stale backends and
   * catch-up that need a backend to stay behind.
   */
  singleCopy?: boolean;
  /**
   * githa may manage repositories on these backends (ids; true = all): sets
   * `admin: true` on them (their ssh URL's account and root; docs/operations.md
   * "The admin account").
   */
  admin?: true | string[];
}

const MAIN = resolve(import.meta.dirname, '../../dist/cli/main.js');
let counter = 0;
const hostKeys = new Map<string, Promise<string>>();

export async function startGitha(cluster: DevCluster, options: StartGithaOptions = {}): Promise<GithaProcess> {
  const n = ++counter;
  const endpoints = options.endpoints ?? ['http', 'ssh', 'git'];
  const backends = cluster.backends
    .filter((b) => !options.only || options.only.includes(b.id))
    .map((b) => ({
      id: b.id,
      ...(endpoints.includes('http') ? { http: b.httpUrl } : {}),
      ...(endpoints.includes('ssh') ? { ssh: b.sshUrl } : {}),
      ...(endpoints.includes('git') ? { git: b.gitUrl } : {}),
      ...(options.admin === true || options.admin?.includes(b.id) ? { admin: endpoints.includes('ssh') ? true : b.sshUrl } : {}),
      ...(options.backends?.[b.id] ?? {}),
    }));
  // One host key for every githa of a cluster: clients must never see a key change.
  const hostKey = join(cluster.dir, 'githa_host_ed25519_key');
  if (!hostKeys.has(hostKey)) hostKeys.set(hostKey, existsSync(hostKey) ? Promise.resolve('') : generateKey(hostKey, 'githa-host'));
  await hostKeys.get(hostKey);
  const authorizedKeysPath = join(cluster.dir, `githa-authorized-keys-${process.pid}-${n}`);
  writeFileSync(authorizedKeysPath, options.authorizedKeys ?? `environment="GITHA_USER=tester" ${cluster.ssh.clientPublicKey.trim()}\n`);
  const operatorKeysPath = join(cluster.dir, `githa-operator-keys-${process.pid}-${n}`);
  if (options.operatorKeys !== undefined) writeFileSync(operatorKeysPath, options.operatorKeys);
  const config = {
    listen: {
      http: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      ...(options.ssh ? { ssh: '127.0.0.1:0' } : {}),
      ...(options.git ? { git: '127.0.0.1:0' } : {}),
      ...(options.https ? { https: '127.0.0.1:0' } : {}),
    },
    ...(options.https ? { tls: options.https } : {}),
    ssh: {
      hostKeys: [hostKey],
      authorizedKeys: authorizedKeysPath,
      ...(options.operatorKeys !== undefined ? { operatorKeys: operatorKeysPath } : {}),
      backendKey: cluster.ssh.clientKeyPath,
      backendKnownHosts: cluster.ssh.knownHostsPath,
    },
    gitDaemon: { allowPush: typeof options.git === 'object' ? options.git.allowPush : false },
    redis: { url: cluster.redis.url },
    backends,
    proxyId: options.proxyId ?? `test-githa-${n}`,
    log: { level: options.logLevel ?? 'debug' },
    ...(options.zone ? { zone: options.zone } : {}),
    ...(options.singleCopy ? { replication: { writeQuorum: 1, background: false } } : {}),
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

  const addresses = await new Promise<{ http: number; admin: number; https?: number; ssh?: number; git?: number }>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`githa did not start within 15 s:\n${out.slice(-4000)}`)), 15_000);
    const check = (): void => {
      for (const line of out.split('\n')) {
        if (!line.includes('"githa listening"')) continue;
        const parsed = JSON.parse(line) as Record<'http' | 'admin' | 'https' | 'ssh' | 'git', { port: number } | undefined>;
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        proc.stderr!.off('data', check);
        res({ http: parsed.http!.port, admin: parsed.admin!.port, https: parsed.https?.port, ssh: parsed.ssh?.port, git: parsed.git?.port });
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

  const knownHostsPath = join(cluster.dir, `githa-known-hosts-${process.pid}-${n}`);
  const hostPub = readFileSync(`${hostKey}.pub`, 'utf8').trim();
  writeFileSync(
    knownHostsPath,
    `${readFileSync(cluster.ssh.knownHostsPath, 'utf8').trimEnd()}\n${addresses.ssh ? `${knownHostsLine(addresses.ssh, hostPub)}\n` : ''}`,
  );
  const repoPath = (repo: string): string => (repo.endsWith('.git') ? repo : `${repo}.git`);
  const githa: GithaProcess = {
    sshPort: addresses.ssh,
    gitPort: addresses.git,
    httpsPort: addresses.https,
    httpsUrl: (repo) => `https://127.0.0.1:${addresses.https}/${repoPath(repo)}`,
    sshUrl: (repo) => `ssh://git@127.0.0.1:${addresses.ssh}/${repoPath(repo)}`,
    gitUrl: (repo) => `git://127.0.0.1:${addresses.git}/${repoPath(repo)}`,
    knownHostsPath,
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
  // A failure on a slow CI machine is only as useful as what it shows: githa's own account of the test.
  // (Only inside a test: a githa started in beforeAll has no test to fail.)
  if (!options.keep) {
    onTestFailed(() => {
      const lines = out.split('\n').filter((l) => /"level":(40|50|60)/.test(l) || /"msg":"(request failed|backend (up|down))"/.test(l));
      console.error(`githa ${addresses.http} warnings and errors (${lines.length}):\n${lines.slice(-40).join('\n')}`);
    });
    onTestFinished(() => githa.stop('SIGKILL'));
  }
  return githa;
}
