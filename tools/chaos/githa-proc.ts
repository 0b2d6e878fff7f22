/**
 * githa processes of a chaos run: `node dist/cli/main.js serve` (or, for the
 * self-test, the broken githa of githa-ack-before-commit.ts) with a
 * generated config, in a process group of its own (tracked by the dev
 * cluster so they never outlive the run), logs appended to a file. A process
 * can be SIGKILLed, paused and restarted on the same ports, as an operator's
 * supervisor would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DevCluster } from '../../src/demo/cluster.js';
import { signalGroup } from '../../src/demo/process.js';
import { GITHA_MAIN, TOOLS_DIST } from '../support/paths.js';

/** The deliberately broken githa of the self-test (githa-ack-before-commit.ts, built to dist-tools/). */
const ACK_BEFORE_COMMIT_ENTRY = join(TOOLS_DIST, 'chaos', 'githa-ack-before-commit.js');

export interface Ports {
  http: number;
  admin: number;
  ssh: number;
}

export class GithaProc {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private untrack: (() => void) | undefined;
  private portsValue: Ports | undefined;
  paused = false;
  readonly logFile: string;
  private readonly configPath: string;

  constructor(
    readonly index: number,
    readonly name: string,
    private readonly cluster: DevCluster,
    private readonly config: Record<string, unknown>,
    private readonly env: NodeJS.ProcessEnv,
    /** Run the broken githa (acknowledges before it commits) instead of `githa serve`. */
    private readonly ackBeforeCommit = false,
  ) {
    this.logFile = join(cluster.dir, `${name}.log`);
    this.configPath = join(cluster.dir, `${name}.json`);
  }

  get ports(): Ports {
    if (!this.portsValue) throw new Error(`${this.name} never started`);
    return this.portsValue;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  url(transport: 'http' | 'ssh', repo: string): string {
    return transport === 'http' ? `http://127.0.0.1:${this.ports.http}/${repo}` : `ssh://git@127.0.0.1:${this.ports.ssh}/${repo}`;
  }

  /** Starts (on the ports of the first start, once known) and waits for "githa listening". */
  async start(): Promise<void> {
    if (this.child) return;
    const p = this.portsValue;
    const listen = p ? { http: `127.0.0.1:${p.http}`, admin: `127.0.0.1:${p.admin}`, ssh: `127.0.0.1:${p.ssh}` } : { http: '127.0.0.1:0', admin: '127.0.0.1:0', ssh: '127.0.0.1:0' };
    // YAML is a superset of JSON.
    writeFileSync(this.configPath, JSON.stringify({ ...this.config, listen }, null, 2));
    const deadline = performance.now() + 20_000;
    for (;;) {
      try {
        await this.spawnOnce();
        return;
      } catch (err) {
        // A port still held by the killed process's last connections: try again shortly.
        if (performance.now() > deadline) throw err;
        await sleep(300);
      }
    }
  }

  private async spawnOnce(): Promise<void> {
    const offset = size(this.logFile);
    const fd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      const args = this.ackBeforeCommit ? [ACK_BEFORE_COMMIT_ENTRY, '--config', this.configPath] : [GITHA_MAIN, 'serve', '--config', this.configPath];
      child = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], env: this.env, detached: true });
    } finally {
      closeSync(fd);
    }
    const pid = child.pid!;
    const untrack = this.cluster.track(pid);
    let gone = false;
    const exited = new Promise<void>((res) =>
      child.once('exit', () => {
        gone = true;
        untrack();
        if (this.child === child) this.child = undefined;
        res();
      }),
    );
    const deadline = performance.now() + 15_000;
    while (performance.now() < deadline && !gone) {
      const line = readFrom(this.logFile, offset)
        .split('\n')
        .find((l) => l.includes('"githa listening"'));
      if (line) {
        const parsed = JSON.parse(line) as { http: { port: number }; admin: { port: number }; ssh: { port: number } };
        this.portsValue ??= { http: parsed.http.port, admin: parsed.admin.port, ssh: parsed.ssh.port };
        this.child = child;
        this.exited = exited;
        this.untrack = untrack;
        this.paused = false;
        return;
      }
      await sleep(50);
    }
    signalGroup(pid, 'SIGKILL');
    await exited;
    throw new Error(`${this.name} did not start: ${readFrom(this.logFile, offset).slice(-2000)}`);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    signalGroup(child.pid, 'SIGKILL');
    await this.exited;
    this.paused = false;
  }

  pause(): void {
    if (!this.child?.pid) return;
    signalGroup(this.child.pid, 'SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (!this.child?.pid) return;
    signalGroup(this.child.pid, 'SIGCONT');
    this.paused = false;
  }

  /** SIGTERM (an orderly stop), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    signalGroup(child.pid, 'SIGCONT');
    signalGroup(child.pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
    this.untrack?.();
  }
}

function size(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function readFrom(path: string, offset: number): string {
  try {
    return readFileSync(path).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}
