import { execFile, spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/demo/ssh.js';
import { useCluster } from '../support/cluster.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const MAIN = join(import.meta.dirname, '../../dist/cli/main.js');

/** OpenSSH client options: no config, this key only, githa's host key checked strictly. */
function sshArgs(githa: GithaProcess, keyPath: string, extra: string[] = []): string[] {
  return [
    '-F', '/dev/null', '-i', keyPath, '-p', String(githa.sshPort), ...extra,
    '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${githa.knownHostsPath}`, '-o', 'GlobalKnownHostsFile=/dev/null',
  ];
}

/** Runs `ssh [extra] <login>@127.0.0.1 [command]` (never through a local shell). */
function ssh(githa: GithaProcess, keyPath: string, login: string, command: string[], extra: string[] = []): Promise<Run> {
  return new Promise((resolve) => {
    execFile('ssh', ['-n', ...sshArgs(githa, keyPath, extra), `${login}@127.0.0.1`, ...command], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The same command run locally, for comparison. */
function local(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

interface Pty {
  pid: number;
  resize(cols: number, rows: number): void;
  onData(fn: (d: string) => void): void;
  onExit(fn: (e: { exitCode: number; signal?: number }) => void): void;
  write(d: string): void;
  kill(signal?: string): void;
}

/** The real ssh client on a pseudo-terminal of its own, as an operator types into it. */
class Terminal {
  output = '';
  readonly exited: Promise<{ exitCode: number; signal?: number }>;
  constructor(readonly pty: Pty) {
    pty.onData((d) => (this.output += d));
    this.exited = new Promise((resolve) => pty.onExit(resolve));
  }
  /** Waits until the output (from `from`) matches. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 20_000): Promise<string> {
    // Without the terminal's control sequences (readline redraws its prompt with them).
    // eslint-disable-next-line no-control-regex -- \x1b starts the ANSI escape sequences being stripped
    const seen = (): string => this.output.slice(from).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    return waitFor(String(pattern), () => (pattern.test(seen()) ? seen() : undefined), timeoutMs, { detail: () => `terminal shows:\n${this.output}` });
  }
}

/** Members of a process group, from /proc. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …: comm may hold spaces, so split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return members;
}


function startedPids(githa: GithaProcess, command: string): number[] {
  return githa
    .logLines()
    .filter((l) => l.msg === 'operator command started' && l.command === command)
    .map((l) => l.pid as number);
}

describe('operator console over SSH', () => {
  const cluster = useCluster({ backends: 2, repositories: ['ops/app'] });
  let opKey = '';
  let opPublic = '';
  let spawnPty: (file: string, args: string[], options: Record<string, unknown>) => Pty;

  beforeAll(async () => {
    opKey = join(cluster().dir, 'operator_key');
    if (!existsSync(opKey)) await generateKey(opKey, 'alice@laptop');
    opPublic = readFileSync(`${opKey}.pub`, 'utf8');
    const require = createRequire(import.meta.url);
    spawnPty = (require('node-pty') as { spawn: typeof spawnPty }).spawn;
  });

  const operatorGitha = () => startGitha(cluster(), { ssh: true, operatorKeys: opPublic });

  it('runs one githa command in a pseudo-terminal, with its output and exit status', async () => {
    const githa = await operatorGitha();
    const help = await ssh(githa, opKey, 'ops', ['help'], ['-tt']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: githa/);
    expect(help.stdout).toContain('\r\n'); // a terminal's line endings: it ran on a pty
    expect(help.stdout).toMatch(/console/);

    // The command's own exit status comes back: an unknown option is a usage error of the CLI.
    const bad = await ssh(githa, opKey, 'ops', ['status', '--no-such-option'], ['-tt']);
    const expected = await local(['status', '--no-such-option'], { GITHA_CONFIG: githa.configPath });
    expect(expected.code).not.toBe(0);
    expect(bad.code).toBe(expected.code);
    expect(bad.stdout + bad.stderr).toMatch(/unknown option/);

    // `ssh -tt ops@githa status`: the cluster's status, as the same command prints it on the host.
    const status = await ssh(githa, opKey, 'ops', ['status'], ['-tt']);
    const onHost = await local(['status'], { GITHA_CONFIG: githa.configPath });
    expect(status.code).toBe(onHost.code);
    const firstLine = onHost.stdout.split('\n')[0]!;
    expect(firstLine.length).toBeGreaterThan(0);
    expect(status.stdout.replace(/\r\n/g, '\n')).toContain(firstLine);
    expect(status.stdout).toMatch(/\bb1\b[\s\S]*\bb2\b/);

    // One log line per command: who, what, status, time.
    const logged = githa.logLines().filter((l) => l.msg === 'operator command');
    expect(logged).toEqual([
      expect.objectContaining({ operator: 'alice', command: 'help', status: 0, pty: true, ms: expect.any(Number) }),
      expect.objectContaining({ operator: 'alice', command: 'status --no-such-option', status: expected.code, pty: true }),
      expect.objectContaining({ operator: 'alice', command: 'status', status: onHost.code, pty: true }),
    ]);
  });

  it('without a pty, runs the command on plain pipes: stdout and stderr apart, ready for a pipe', async () => {
    const githa = await operatorGitha();
    const help = await ssh(githa, opKey, 'ops', ['help'], ['-T']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: githa/);
    expect(help.stdout).not.toContain('\r');
    const usage = await ssh(githa, opKey, 'ops', ['status --no-such-option'], ['-T']);
    expect(usage.stdout).toBe('');
    expect(usage.stderr).toMatch(/unknown option/);
    // `ssh ops@githa status --json | jq`: plain JSON on stdout.
    const json = await ssh(githa, opKey, 'ops', ['status', '--json'], ['-T']);
    expect(json.code).toBe((await local(['status', '--json'], { GITHA_CONFIG: githa.configPath })).code);
    expect(JSON.parse(json.stdout)).toEqual(expect.any(Object));
    // The operator behind the key is who the push log records for a maintenance lock.
    const lock = await ssh(githa, opKey, 'ops', ['lock', 'ops/app', '--backend', 'b1', '--release-after', '0'], ['-T']);
    expect(lock.code, lock.stderr).toBe(0);
    expect(await cluster().redis.cli('XRANGE', 'githa:repo:{ops/app.git}:log', '-', '+')).toMatch(/user\nalice\n/);
    expect(githa.logLines().filter((l) => l.msg === 'operator command').map((l) => l.pty)).toEqual([false, false, false, false]);
  });

  it('without node-pty, says so and runs on pipes', async () => {
    // A module hook that makes `import('node-pty')` fail in githa, as on a host where it is not installed.
    const hook = join(cluster().dir, 'no-node-pty.mjs');
    const resolveHook = `export async function resolve(s, c, next) { if (s === 'node-pty') throw Object.assign(new Error("Cannot find package 'node-pty'"), { code: 'ERR_MODULE_NOT_FOUND' }); return next(s, c); }`;
    writeFileSync(hook, `import { register } from 'node:module';\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(resolveHook)}`)});\n`);
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${saved ?? ''} --import ${pathToFileURL(hook).href}`;
    let githa: GithaProcess;
    try {
      githa = await operatorGitha();
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
    const help = await ssh(githa, opKey, 'ops', ['help'], ['-tt']);
    expect(help.code).toBe(0);
    expect(help.stderr).toMatch(/githa: no pseudo-terminal here \(node-pty is not available: Cannot find package 'node-pty'\); running without one/);
    expect(help.stdout).toMatch(/Usage: githa/);
    // githa's log arrives through a pipe, possibly after ssh has returned.
    const commands = await waitFor('the operator command log line', () => {
      const lines = githa.logLines().filter((l) => l.msg === 'operator command');
      return lines.length > 0 ? lines : undefined;
    });
    expect(commands.map((l) => l.pty)).toEqual([false]);
    expect(githa.logs()).toContain('node-pty cannot be loaded');
  });

  it('refuses shell syntax and anything but githa operator commands, running nothing', async () => {
    const githa = await operatorGitha();
    const marker = join(cluster().dir, 'operator-pwned');
    const cases = [
      `status; touch ${marker}`,
      `status && touch ${marker}`,
      `status | touch ${marker}`,
      `status > ${marker}`,
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `status 'ops/app'`,
      'status\\ x',
      'ls -la',
      `touch ${marker}`,
      'sh -c status',
      'serve',
      'demo',
      'console; status',
    ];
    for (const command of cases) {
      for (const tty of ['-T', '-tt']) {
        const r = await ssh(githa, opKey, 'ops', [command], [tty]);
        expect(r.code, `${tty} ${command}`).toBe(2);
        expect(r.stderr, `${tty} ${command}`).toMatch(/^githa: .*(nothing was run|is not a githa operator command)/);
        if (tty === '-T') expect(r.stdout, command).toBe('');
      }
    }
    const semicolon = await ssh(githa, opKey, 'ops', ['status; rm -rf /'], ['-T']);
    expect(semicolon.stderr).toBe(
      'githa: ";" is not accepted: the operator console runs one githa command without a shell (no quoting, pipes, redirections or command lists); nothing was run\r\n',
    );
    expect(existsSync(marker)).toBe(false);
    expect(githa.logs()).not.toContain('"operator command started"');
    expect(githa.logLines().filter((l) => l.msg === 'operator command refused')).toHaveLength(cases.length * 2 + 1);
  });

  it('keeps operators and users apart: the login name picks the key file', async () => {
    const githa = await operatorGitha();
    // A user's key is no operator key, …
    const user = await ssh(githa, cluster().ssh.clientKeyPath, 'ops', ['help']);
    expect(user.code).toBe(255);
    expect(user.stderr).toMatch(/Permission denied \(publickey\)/);
    // … an operator's key is no user key, …
    const asUser = await ssh(githa, opKey, 'git', ["git-upload-pack 'ops/app.git'"]);
    expect(asUser.stderr).toMatch(/Permission denied \(publickey\)/);
    // … and users keep their Git and their greeting.
    const git = await ssh(githa, cluster().ssh.clientKeyPath, 'git', ["git-upload-pack 'ops/app.git'"]);
    expect(git.stdout).toBe('0000');
    const shell = await ssh(githa, cluster().ssh.clientKeyPath, 'git', [], ['-tt']);
    expect(shell.stdout + shell.stderr).toMatch(/this host serves Git only/);
    // The operator keys file is re-read when it changes: a revoked key is refused at once.
    writeFileSync((JSON.parse(readFileSync(githa.configPath, 'utf8')) as { ssh: { operatorKeys: string } }).ssh.operatorKeys, '# nobody\n');
    expect((await ssh(githa, opKey, 'ops', ['help'])).stderr).toMatch(/Permission denied \(publickey\)/);
    // Without ssh.operatorKeys there is no console: `ops` is a Git user name like any other.
    const plain = await startGitha(cluster(), { ssh: true });
    const noConsole = await ssh(plain, cluster().ssh.clientKeyPath, 'ops', ['help']);
    expect(noConsole.code).not.toBe(0);
    expect(noConsole.stderr).toMatch(/githa serves git-upload-pack/);
    expect((await ssh(plain, opKey, 'ops', ['help'])).stderr).toMatch(/Permission denied \(publickey\)/);
  });

  it('an interactive session gets the githa> prompt, runs commands, and exit ends it with status 0', async () => {
    const githa = await operatorGitha();
    const term = new Terminal(spawnPty('ssh', [...sshArgs(githa, opKey, ['-t']), 'ops@127.0.0.1'], { name: 'xterm', cols: 100, rows: 30, env: process.env }));
    await term.waitFor(/githa> $/);
    let mark = term.output.length;
    term.pty.write('help\r');
    await term.waitFor(/Usage: githa[\s\S]*githa> $/, mark);
    mark = term.output.length;
    term.pty.write('status; rm -rf /\r');
    expect(await term.waitFor(/githa> $/, mark)).toMatch(/githa: ";" is not accepted[^\n]*nothing was run/);
    mark = term.output.length;
    term.pty.write('status --no-such-option\r');
    expect(await term.waitFor(/githa> $/, mark)).toMatch(/unknown option[\s\S]*\(exit status [12]\)/);
    // The terminal's size follows the client's window (commander wraps help to the terminal's width).
    const widest = (text: string): number => Math.max(...text.split(/\r?\n/).map((l) => l.length));
    term.pty.resize(90, 30);
    await new Promise((r) => setTimeout(r, 300));
    mark = term.output.length;
    term.pty.write('help\r');
    const narrow = await term.waitFor(/Usage: githa[\s\S]*githa> $/, mark);
    expect(widest(narrow)).toBeLessThanOrEqual(90);
    term.pty.resize(200, 30);
    await new Promise((r) => setTimeout(r, 300));
    mark = term.output.length;
    term.pty.write('help\r');
    expect(widest(await term.waitFor(/Usage: githa[\s\S]*githa> $/, mark))).toBeGreaterThan(90);
    term.pty.write('exit\r');
    const exit = await term.exited;
    expect(exit.exitCode).toBe(0);
    expect(githa.logLines().filter((l) => l.msg === 'operator command')).toEqual([
      expect.objectContaining({ operator: 'alice', command: 'console', status: 0, pty: true }),
    ]);
  });

  it('a console without a terminal reads its commands from stdin', async () => {
    const githa = await operatorGitha();
    const child = spawnChild('ssh', ['-T', ...sshArgs(githa, opKey), 'ops@127.0.0.1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stdin.end('help\nstatus | cat\n');
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    expect(out).toMatch(/^githa operator console/);
    expect(out).toMatch(/githa> help\nUsage: githa/);
    expect(out).toMatch(/githa> status \| cat\ngitha> \n$/);
  });

  it('ends the command when the client disconnects', async () => {
    const githa = await operatorGitha();
    // In a pseudo-terminal: the console, gone with its whole process group.
    const term = new Terminal(spawnPty('ssh', [...sshArgs(githa, opKey, ['-t']), 'ops@127.0.0.1'], { name: 'xterm', cols: 80, rows: 24, env: process.env }));
    await term.waitFor(/githa> $/);
    const [pid] = startedPids(githa, 'console');
    expect(pid).toBeGreaterThan(0);
    // A command waiting at its prompt: `lock` holds the write lock until the operator answers.
    term.pty.write('lock ops/app --backend b1\r');
    await term.waitFor(/Ready to release the locks\?/);
    expect(groupMembers(pid!).length).toBeGreaterThanOrEqual(2); // the console and its lock command
    term.pty.kill('SIGKILL');
    await waitFor('the console and its command to end', () => groupMembers(pid!).length === 0);
    await waitFor('the disconnected operator command in the log', () => githa.logLines().some((l) => l.msg === 'operator command' && l.disconnected === true));

    // On pipes (no pty), the console waiting for its next line.
    const child: ChildProcess = spawnChild('ssh', ['-T', ...sshArgs(githa, opKey), 'ops@127.0.0.1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor('the console prompt', () => out.includes('githa> '));
    const second = startedPids(githa, 'console')[1]!;
    expect(second).toBeGreaterThan(0);
    expect(groupMembers(second)).toContain(second);
    child.kill('SIGKILL');
    await waitFor('the second console to end', () => groupMembers(second).length === 0);
  });
});
