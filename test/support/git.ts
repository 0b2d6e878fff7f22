/**
 * Runs the real `git` client against the dev cluster (or githa), always with
 * execFile (no shell) and a clean environment:
 *
 * - HOME is a private directory (its .gitconfig sets user.name/email and
 *   init.defaultBranch=main); /etc/gitconfig is ignored (GIT_CONFIG_NOSYSTEM);
 *   nothing of the caller's GIT_* variables, ssh-agent or ~/.ssh leaks in.
 * - GIT_TERMINAL_PROMPT=0: a credential prompt fails instead of hanging.
 * - GIT_SSH_COMMAND uses the cluster's client key, strict host key checking
 *   against a known_hosts file, IdentitiesOnly and BatchMode.
 * - `protocolVersion` adds `-c protocol.version=N` to every command.
 *
 *   const git = await GitClient.forCluster(cluster, { protocolVersion: 2 });
 *   const work = await git.init();
 *   const sha = await git.commit(work, { 'README': 'hello\n' }, 'first');
 *   await git.push(work, backend.url('http', 'repo'), ['main:refs/heads/topic']);
 *   const clone = await git.clone(backend.url('ssh', 'repo'), ['--branch', 'topic']);
 *   expect(await git.forEachRef(clone)).toMatchObject({ 'refs/heads/topic': sha });
 */
import { execFile } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DevCluster } from '../../src/demo/cluster.js';
import { isolatedGitEnv } from '../../tools/support/git-env.js';

export interface GitResult {
  stdout: string;
  stderr: string;
  /** Exit code (0 on success; null when killed). */
  code: number | null;
}

export class GitCommandError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly result: GitResult,
    readonly signal: string | null,
  ) {
    super(
      `git ${args.join(' ')} failed (${signal ?? `exit code ${result.code}`})\n--- stderr ---\n${result.stderr.slice(-4000)}` +
        (result.stdout ? `\n--- stdout ---\n${result.stdout.slice(-2000)}` : ''),
    );
    this.name = 'GitCommandError';
  }
}

export interface GitRunOptions {
  cwd?: string;
  /** Extra environment variables (override the clean defaults). */
  env?: Record<string, string>;
  /** Override the client's protocol.version for this command (null: leave git's default). */
  protocolVersion?: 0 | 1 | 2 | null;
  /** Resolve with the result instead of throwing when git fails. */
  allowFailure?: boolean;
  /** Set GIT_TRACE_PACKET=1 (the trace is in stderr). */
  tracePackets?: boolean;
  /** Set GIT_TRACE_CURL=1 with GIT_TRACE_CURL_NO_DATA=1 (headers only, in stderr). */
  traceCurl?: boolean;
  /** Data for stdin. */
  input?: string | Buffer;
  /** Kill git after this long; default 120 s. */
  timeoutMs?: number;
}

export interface GitClientOptions {
  /** Directory for HOME and work trees (created if needed); e.g. cluster.dir. */
  baseDir: string;
  /** SSH client key and known_hosts; without them ssh:// URLs do not work. */
  ssh?: { keyPath: string; knownHostsPath: string };
  /** Adds `-c protocol.version=N` to every command; undefined = git's default (2). */
  protocolVersion?: 0 | 1 | 2;
  /** Extra environment for every command. */
  env?: Record<string, string>;
}

/** Quotes a word for the shell that git runs GIT_SSH_COMMAND with. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

let clientCounter = 0;

export class GitClient {
  readonly home: string;
  readonly baseDir: string;
  private readonly env: Record<string, string>;

  private constructor(
    private readonly options: GitClientOptions,
    home: string,
  ) {
    this.baseDir = options.baseDir;
    this.home = home;
    const env = isolatedGitEnv(home, { name: 'Githa Test', email: 'test@githa.invalid' });
    if (options.ssh) {
      env.GIT_SSH_VARIANT = 'ssh';
      env.GIT_SSH_COMMAND = [
        'ssh',
        '-F', '/dev/null', // ssh reads ~/.ssh/config of the passwd home, not $HOME
        '-i', shellQuote(options.ssh.keyPath),
        '-o', 'IdentitiesOnly=yes',
        '-o', 'BatchMode=yes',
        '-o', 'StrictHostKeyChecking=yes',
        '-o', `UserKnownHostsFile=${shellQuote(options.ssh.knownHostsPath)}`,
        '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', 'UpdateHostKeys=no',
        '-o', 'ConnectTimeout=10',
        '-o', 'LogLevel=ERROR',
      ].join(' ');
    }
    this.env = { ...env, ...options.env };
  }

  /** A client with its own HOME under `options.baseDir`. */
  static create(options: GitClientOptions): GitClient {
    mkdirSync(options.baseDir, { recursive: true });
    const home = mkdtempSync(join(options.baseDir, `git-client-${++clientCounter}-`));
    writeFileSync(
      join(home, '.gitconfig'),
      [
        '[user]',
        '\tname = Githa Test',
        '\temail = test@githa.invalid',
        '[init]',
        '\tdefaultBranch = main',
        '[advice]',
        '\tdetachedHead = false',
        '[gc]',
        '\tauto = 0',
        '',
      ].join('\n'),
    );
    return new GitClient(options, home);
  }

  /** A client for the dev cluster: files under cluster.dir, the cluster's SSH key and known_hosts. */
  static forCluster(
    cluster: DevCluster,
    options: { protocolVersion?: 0 | 1 | 2; env?: Record<string, string>; knownHostsPath?: string } = {},
  ): GitClient {
    return GitClient.create({
      baseDir: join(cluster.dir, 'clients'),
      ssh: { keyPath: cluster.ssh.clientKeyPath, knownHostsPath: options.knownHostsPath ?? cluster.ssh.knownHostsPath },
      protocolVersion: options.protocolVersion,
      env: options.env,
    });
  }

  /** The same client (same HOME and work trees) with another protocol.version. */
  withProtocol(version: 0 | 1 | 2): GitClient {
    return new GitClient({ ...this.options, protocolVersion: version }, this.home);
  }

  /** The environment git runs with (e.g. to run `git` yourself). */
  environment(extra: Record<string, string> = {}): Record<string, string> {
    return { ...this.env, ...extra };
  }

  /** Runs `git args…`; throws GitCommandError unless it exits with 0 (or allowFailure). */
  run(args: string[], options: GitRunOptions = {}): Promise<GitResult> {
    const version = options.protocolVersion === undefined ? this.options.protocolVersion : options.protocolVersion;
    const fullArgs = version === undefined || version === null ? args : ['-c', `protocol.version=${version}`, ...args];
    const env: Record<string, string> = { ...this.env };
    if (options.tracePackets) env.GIT_TRACE_PACKET = '1';
    if (options.traceCurl) {
      env.GIT_TRACE_CURL = '1';
      env.GIT_TRACE_CURL_NO_DATA = '1';
    }
    Object.assign(env, options.env);
    return new Promise((resolve, reject) => {
      const child = execFile(
        'git',
        fullArgs,
        {
          cwd: options.cwd ?? this.home,
          env,
          maxBuffer: 256 * 1024 * 1024,
          timeout: options.timeoutMs ?? 120_000,
          killSignal: 'SIGKILL',
          encoding: 'utf8',
        },
        (error, stdout, stderr) => {
          const errno = error as (NodeJS.ErrnoException & { code?: unknown; signal?: string | null }) | null;
          const code = errno ? (typeof errno.code === 'number' ? errno.code : null) : 0;
          const result: GitResult = { stdout, stderr, code };
          if (!errno || options.allowFailure) return resolve(result);
          reject(new GitCommandError(fullArgs, result, errno.signal ?? null));
        },
      );
      if (options.input !== undefined) child.stdin?.end(options.input);
      else child.stdin?.end();
    });
  }

  /** A new empty directory (under this client's HOME, itself under baseDir). */
  async workdir(prefix = 'work'): Promise<string> {
    return mkdtemp(join(this.home, `${prefix}-`));
  }

  /** `git init -b main` in a new work directory; returns its path. */
  async init(prefix = 'repo'): Promise<string> {
    const dir = await this.workdir(prefix);
    await this.run(['init', '--quiet', '--initial-branch=main'], { cwd: dir });
    return dir;
  }

  /** Writes the files (creating parent dirs), `git add`s them, commits; returns the commit id. */
  async commit(cwd: string, files: Record<string, string | Buffer>, message = 'commit'): Promise<string> {
    for (const [name, content] of Object.entries(files)) {
      const path = join(cwd, name);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, content);
    }
    await this.run(['add', '--all', '--', ...Object.keys(files)], { cwd });
    await this.run(['commit', '--quiet', '--allow-empty', '-m', message], { cwd });
    return this.revParse(cwd, 'HEAD');
  }

  /** Makes `count` commits each changing one small file; returns the last commit id. */
  async commits(cwd: string, count: number, label = 'commit'): Promise<string> {
    let sha = '';
    for (let i = 1; i <= count; i++) {
      sha = await this.commit(cwd, { [`${label}.txt`]: `${label} ${i} ${randomBytes(8).toString('hex')}\n` }, `${label} ${i}`);
    }
    return sha;
  }

  async revParse(cwd: string, rev: string): Promise<string> {
    return (await this.run(['rev-parse', '--verify', '--end-of-options', rev], { cwd })).stdout.trim();
  }

  /** `git clone [extraArgs] url <new dir>`; returns the new directory. */
  async clone(url: string, extraArgs: string[] = [], options: GitRunOptions = {}): Promise<string> {
    const dir = join(await this.workdir('clone'), 'repo');
    await this.run(['clone', '--quiet', ...extraArgs, '--', url, dir], options);
    return dir;
  }

  async push(cwd: string, url: string, refspecs: string[], extraArgs: string[] = [], options: GitRunOptions = {}): Promise<GitResult> {
    return this.run(['push', '--porcelain', ...extraArgs, '--', url, ...refspecs], { cwd, ...options });
  }

  async fetch(cwd: string, url: string, refspecs: string[] = [], extraArgs: string[] = [], options: GitRunOptions = {}): Promise<GitResult> {
    return this.run(['fetch', '--quiet', ...extraArgs, '--', url, ...refspecs], { cwd, ...options });
  }

  /** refname → object id of the local refs (optionally under `pattern`, e.g. 'refs/heads/'). */
  async forEachRef(cwd: string, pattern?: string): Promise<Record<string, string>> {
    const args = ['for-each-ref', '--format=%(objectname) %(refname)'];
    if (pattern) args.push(pattern);
    return parseRefLines((await this.run(args, { cwd })).stdout, ' ');
  }

  /** refname → object id advertised by a remote (HEAD included), optionally only refs matching `patterns`. */
  async lsRemote(
    url: string,
    patterns: string[] = [],
    extraArgs: string[] = [],
    options: GitRunOptions = {},
  ): Promise<Record<string, string>> {
    return parseRefLines((await this.run(['ls-remote', ...extraArgs, '--', url, ...patterns], options)).stdout, '\t');
  }

  /**
   * The protocol version the server actually spoke for `git ls-remote url`
   * under this client's settings (from GIT_TRACE_PACKET).
   */
  async negotiatedVersion(url: string): Promise<0 | 1 | 2> {
    return packetTraceVersion((await this.run(['ls-remote', '--', url], { tracePackets: true })).stderr);
  }
}

/** The protocol version seen in GIT_TRACE_PACKET output: 2 or 1 if the server said so, else 0. */
export function packetTraceVersion(trace: string): 0 | 1 | 2 {
  if (/packet:\s+\S+< version 2$/m.test(trace)) return 2;
  if (/packet:\s+\S+< version 1$/m.test(trace)) return 1;
  return 0;
}

function parseRefLines(text: string, separator: string): Record<string, string> {
  const refs: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (!line) continue;
    const at = line.indexOf(separator);
    if (at < 0) continue;
    refs[line.slice(at + 1)] = line.slice(0, at);
  }
  return refs;
}

/** `bytes` of random (incompressible) data. */
export function randomData(bytes: number): Buffer {
  return randomBytes(bytes);
}

/** Writes `bytes` random bytes to `path`; returns their sha256 (hex). */
export async function writeRandomFile(path: string, bytes: number): Promise<string> {
  const data = randomBytes(bytes);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data);
  return sha256(data);
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
