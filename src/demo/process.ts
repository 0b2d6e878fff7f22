/**
 * Process management for the dev cluster: spawn a server with its output
 * appended to a log file, wait until it accepts connections, stop it with
 * SIGTERM then SIGKILL, pause and resume it, and restart it on the same port.
 *
 * Every server runs in its own process group (`detached: true`), so signals go
 * to the whole group: lighttpd's CGI children, sshd's sessions and git
 * daemon's upload-pack/receive-pack children stop, pause and die with their
 * parent.
 *
 * Nothing here writes to the console: logs go to files, failures are thrown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, fstatSync, writeSync, statSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export const LOCALHOST = '127.0.0.1';

/** A dev-cluster server could not be started; the message ends with the tail of its log. */
export class DevClusterStartError extends Error {
  constructor(
    message: string,
    readonly server: string,
    readonly logFile: string,
    readonly addressInUse = false,
  ) {
    super(message);
    this.name = 'DevClusterStartError';
  }
}

/** Asks the kernel for a free port on 127.0.0.1 (listen on port 0, then close). */
export function pickFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, LOCALHOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not pick a free port'))));
    });
  });
}

/** Resolves true when something accepts a TCP connection on 127.0.0.1:port. */
export function canConnect(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOCALHOST, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Connects, optionally writes `send`, and resolves with the first bytes
 * received (as latin1 text) or null on error, close or timeout.
 */
export function exchange(port: number, send: string | null, timeoutMs = 1000): Promise<string | null> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host: LOCALHOST, port });
    let received = '';
    const done = (result: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(received.length > 0 ? received : null), timeoutMs);
    socket.once('connect', () => {
      if (send !== null) socket.write(send);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\n')) done(received);
    });
    socket.once('error', () => done(null));
    socket.once('close', () => done(received.length > 0 ? received : null));
  });
}

/** The last `maxLines` lines (at most 8 KiB) of a file, or a note if unreadable. */
export function tailFile(path: string, maxLines = 40, fromOffset = 0): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const start = Math.max(fromOffset, size - 8192, 0);
    const buffer = Buffer.alloc(size - start);
    readSync(fd, buffer, 0, buffer.length, start);
    const lines = buffer.toString('utf8').split('\n');
    return lines.slice(-maxLines - 1).join('\n').trimEnd();
  } catch (err) {
    return `(log ${path} unreadable: ${(err as Error).message})`;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Sends a signal to a whole process group, ignoring "no such process". */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/** Receives the pid of each server process when it starts and when it exits. */
export interface PidTracker {
  add(pid: number): void;
  remove(pid: number): void;
}

/** What a server runs on a given port. */
export interface CommandSpec {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface PortServerOptions {
  /** Name used in errors and log markers, e.g. 'b1-http'. */
  name: string;
  /** Output of the server (stdout and stderr) is appended here. */
  logFile: string;
  /** Builds the command line for a port (and may write a config file). */
  build(port: number): CommandSpec | Promise<CommandSpec>;
  /**
   * Readiness check replacing "the port accepts a connection" (e.g. redis
   * PING, the SSH banner). Resolve true when the server is really up.
   */
  probe?(port: number): Promise<boolean>;
  tracker?: PidTracker;
  /** Default 10 s. */
  startTimeoutMs?: number;
  /** Time between SIGTERM and SIGKILL when stopping. Default 5 s. */
  stopTimeoutMs?: number;
  /** A fixed port; by default a free one is picked at the first start. */
  port?: number;
}

export type ServerState = 'stopped' | 'running' | 'paused';

const ADDRESS_IN_USE = /address already in use|EADDRINUSE/i;

/**
 * A server process listening on one TCP port of 127.0.0.1. The port is picked
 * at the first start (retrying with another port if it was taken meanwhile)
 * and kept across restarts.
 */
export class PortServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private paused = false;
  private portValue: number | undefined;

  constructor(private readonly options: PortServerOptions) {
    this.portValue = options.port;
  }

  get name(): string {
    return this.options.name;
  }

  get logFile(): string {
    return this.options.logFile;
  }

  /** The port; throws before the first start. */
  get port(): number {
    if (this.portValue === undefined) throw new Error(`${this.name} has no port yet (never started)`);
    return this.portValue;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get state(): ServerState {
    if (!this.child) return 'stopped';
    return this.paused ? 'paused' : 'running';
  }

  /** Starts the server and waits until it is ready. No-op when running. */
  async start(): Promise<void> {
    if (this.child) return;
    if (this.portValue === undefined) {
      // First start: on "address in use" (another process took the port
      // between our probe and the server's bind) try another port.
      for (let attempt = 1; ; attempt++) {
        const port = await pickFreePort();
        try {
          await this.startOn(port);
          this.portValue = port;
          return;
        } catch (err) {
          if (!(err instanceof DevClusterStartError && err.addressInUse) || attempt >= 5) throw err;
        }
      }
    }
    // Restart: the port must stay the same; wait for it to become free.
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 10_000);
    for (;;) {
      try {
        await this.startOn(this.portValue);
        return;
      } catch (err) {
        if (!(err instanceof DevClusterStartError && err.addressInUse) || Date.now() > deadline) throw err;
        await delay(100);
      }
    }
  }

  private async startOn(port: number): Promise<void> {
    const spec = await this.options.build(port);
    const logFile = this.options.logFile;
    const logOffset = fileSize(logFile);
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      writeSync(fd, `--- ${new Date().toISOString()} starting ${this.name} on port ${port}: ${spec.command} ${spec.args.join(' ')}\n`);
      child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env ?? minimalEnv(),
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }

    let exitInfo: string | undefined;
    let spawnError: Error | undefined;
    const exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        exitInfo = `could not run ${spec.command}: ${err.message}`;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitInfo = `exited with ${signal ?? `code ${code}`}`;
        resolve();
      });
    });
    const pid = child.pid;
    if (pid !== undefined) this.options.tracker?.add(pid);
    void exited.then(() => {
      if (pid !== undefined) this.options.tracker?.remove(pid);
      if (this.child === child) {
        this.child = undefined;
        this.paused = false;
      }
    });

    const fail = async (reason: string): Promise<never> => {
      if (pid !== undefined && exitInfo === undefined) {
        signalGroup(pid, 'SIGKILL');
        await exited;
      }
      const tail = tailFile(logFile, 40, logOffset);
      throw new DevClusterStartError(
        `${this.name} failed to start on 127.0.0.1:${port}: ${reason}\n--- tail of ${logFile} ---\n${tail}`,
        this.name,
        logFile,
        ADDRESS_IN_USE.test(tail),
      );
    };

    if (spawnError || pid === undefined) {
      await exited;
      return fail(exitInfo ?? 'spawn failed');
    }

    const timeoutMs = this.options.startTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exitInfo !== undefined) return fail(exitInfo);
      // The probe (when there is one) connects by itself: one connection per attempt.
      const ready = this.options.probe ? await this.options.probe(port) : await canConnect(port, 500);
      if (exitInfo !== undefined) return fail(exitInfo);
      if (ready) break;
      if (Date.now() > deadline) return fail(`not ready after ${timeoutMs} ms`);
      await delay(15);
    }
    this.child = child;
    this.paused = false;
    this.exited = exited;
  }

  /**
   * Stops the server: `signal` (default SIGTERM) to its process group, then
   * SIGKILL after the stop timeout. Resolves once the server has exited.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    const pid = child?.pid;
    if (!child || pid === undefined) return;
    const exited = this.exited;
    signalGroup(pid, signal);
    // A paused (SIGSTOPped) process only acts on SIGTERM once continued.
    if (signal !== 'SIGKILL') signalGroup(pid, 'SIGCONT');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.options.stopTimeoutMs ?? 5000);
    });
    const outcome = await Promise.race([exited.then(() => 'exited' as const), timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') signalGroup(pid, 'SIGKILL');
    await exited;
    // Leftover children (CGI scripts, ssh sessions, upload-pack) go too.
    signalGroup(pid, 'SIGKILL');
  }

  /** SIGSTOP to the process group: the port still accepts connections, nothing answers. */
  pause(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    signalGroup(pid, 'SIGSTOP');
    this.paused = true;
  }

  /** SIGCONT to the process group. */
  resume(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    signalGroup(pid, 'SIGCONT');
    this.paused = false;
  }
}

/** PATH, LANG and TZ of this process plus `extra`: servers never see our GIT_* or secrets. */
export function minimalEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
    LANG: 'C.UTF-8',
  };
  if (process.env.TZ) env.TZ = process.env.TZ;
  return { ...env, ...extra };
}

/**
 * Runs a command (no shell) and resolves with its stdout; rejects with an
 * error that includes stderr when it fails.
 */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? minimalEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${command}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) return resolve(stdout);
      const stderr = Buffer.concat(err).toString('utf8').trim();
      reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit code ${code}`}): ${stderr || stdout.trim()}`));
    });
  });
}
