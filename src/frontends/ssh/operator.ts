/**
 * The operator console over SSH (`ssh -t ops@githa status`): a session of a
 * key from `ssh.operatorKeys` runs githa's own CLI, never a shell.
 *
 * - `exec "<command>"`: the line is parsed by src/protocol/operator-command.ts
 *   (split on whitespace, shell metacharacters refused, first word one of
 *   githa's operator commands) and run as `node <dist>/cli/main.js <words>`.
 * - `shell`: `githa console`, a `githa> ` prompt that runs such lines.
 * - With a pty request the command runs in a pseudo-terminal (node-pty,
 *   loaded on first use); without one, on plain pipes with stdout and stderr
 *   apart, so `ssh ops@githa status --json | jq` works.
 * - The command reads the configuration githa was started with (GITHA_CONFIG).
 * - All output is handed to the connection, then the exit status, then EOF
 *   and close. A client that goes away takes the command's process group
 *   with it (SIGHUP, then SIGKILL).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { PseudoTtyInfo, ServerChannel, Session, WindowChangeInfo } from 'ssh2';
import type { Logger } from 'pino';
import { parseOperatorCommand } from '../../protocol/operator-command.js';
import type { Config } from '../../config/schema.js';

const CLI_MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
/** Exit status of a console command line that was refused: nothing ran (EXIT.FAILED of the CLI). */
const REFUSED = 2;
const KILL_AFTER_MS = 5_000;

/** The part of node-pty githa uses (an optional dependency: typed here, imported by name at run time). */
interface Pty {
  readonly pid: number;
  onData(listener: (data: Buffer | string) => void): unknown;
  onExit(listener: (e: { exitCode: number; signal?: number }) => void): unknown;
  write(data: Buffer | string): void;
  resize(cols: number, rows: number): void;
  pause(): void;
  resume(): void;
}
interface PtyModule {
  spawn(file: string, args: string[], options: { name: string; cols: number; rows: number; cwd: string; env: NodeJS.ProcessEnv; encoding: null }): Pty;
}

/** A running operator command: its process group is killed when the client goes. */
interface Running {
  pid: number;
  exited: boolean;
  resize?(cols: number, rows: number): void;
}

export class OperatorConsole {
  private readonly running = new Set<Running>();
  private pty: Promise<PtyModule | Error> | undefined;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  /** Serves one session channel of an operator's connection. */
  handleSession(session: Session, operator: string, clog: Logger): void {
    let term: { name: string; cols: number; rows: number } | undefined;
    let current: Running | undefined;
    // Client environment (LANG, LC_*, anything) is accepted and never passed on.
    session.on('env', (accept) => accept?.());
    session.on('pty', (accept, _reject, info: PseudoTtyInfo) => {
      term = { name: /^[\w.+-]{1,64}$/.test(info.term) ? info.term : 'xterm', cols: info.cols || 80, rows: info.rows || 24 };
      accept?.();
    });
    session.on('window-change', (accept, _reject, info: WindowChangeInfo) => {
      if (term && info.cols > 0 && info.rows > 0) {
        term = { ...term, cols: info.cols, rows: info.rows };
        current?.resize?.(info.cols, info.rows);
      }
      accept?.();
    });
    session.on('subsystem', (_accept, reject) => reject?.());
    session.on('shell', (accept) => {
      const channel = accept();
      void this.run(['console'], channel, () => term, operator, clog).then((r) => (current = r));
    });
    session.on('exec', (accept, _reject, { command }) => {
      const channel = accept();
      const parsed = parseOperatorCommand(command);
      if (!parsed.ok) {
        clog.info({ operator, length: command.length }, 'operator command refused');
        refuse(channel, parsed.message);
        return;
      }
      void this.run(parsed.words, channel, () => term, operator, clog).then((r) => (current = r));
    });
  }

  /** Ends every running operator command (githa is stopping). */
  closeAll(): void {
    for (const r of this.running) killGroup(r);
  }

  private async run(
    words: string[],
    channel: ServerChannel,
    terminal: () => { name: string; cols: number; rows: number } | undefined,
    operator: string,
    clog: Logger,
  ): Promise<Running | undefined> {
    let term = terminal();
    const configFile = this.config.configFile ?? process.env.GITHA_CONFIG;
    if (!configFile) {
      refuse(channel, 'this githa was started without a configuration file, so it cannot run operator commands');
      return undefined;
    }
    // ssh2 does not mark a channel the client closed as destroyed: track it here.
    let gone = false;
    let running: Running | undefined;
    channel.once('close', () => {
      gone = true;
      if (running && !running.exited) killGroup(running);
    });
    // githa's own environment (e.g. GITHA_REDIS_URL), its configuration file, the client's terminal type, and,
    // as sshd sets them, USER and LOGNAME: the operator behind the key, whom lock and thaw record in the push log.
    const env: NodeJS.ProcessEnv = { ...process.env, GITHA_CONFIG: configFile, TERM: term?.name ?? 'dumb', USER: operator, LOGNAME: operator };
    let pty: PtyModule | undefined;
    if (term) {
      const loaded = await this.loadPty();
      if (loaded instanceof Error) channel.stderr.write(`githa: no pseudo-terminal here (node-pty is not available: ${loaded.message}); running without one\r\n`);
      else pty = loaded;
    }
    if (gone) return undefined;
    term = terminal(); // the window may have changed while node-pty loaded
    const started = performance.now();
    const command = words.join(' ');
    const done = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
      if (running) {
        running.exited = true;
        this.running.delete(running);
      }
      const fields = { operator, command, status: exitCode, signal, pty: pty !== undefined, ms: Math.round(performance.now() - started) };
      if (gone) {
        clog.info({ ...fields, disconnected: true }, 'operator command');
        return;
      }
      clog.info(fields, 'operator command');
      void drained(channel).then(() => {
        if (signal) channel.exit(signal.replace(/^SIG/, ''), false, '');
        else channel.exit(exitCode ?? REFUSED);
        channel.end();
      });
    };
    try {
      running = pty ? this.inPty(pty, words, env, term!, channel, done) : this.onPipes(words, env, channel, done);
    } catch (err) {
      clog.error({ operator, command, err: (err as Error).message }, 'operator command failed to start');
      refuse(channel, `cannot start ${words[0]}: ${(err as Error).message}`);
      return undefined;
    }
    if (!running.exited) this.running.add(running);
    clog.info({ operator, command, pid: running.pid, pty: pty !== undefined }, 'operator command started');
    return running;
  }

  private inPty(
    ptyModule: PtyModule,
    words: string[],
    env: NodeJS.ProcessEnv,
    term: { name: string; cols: number; rows: number },
    channel: ServerChannel,
    done: (code: number | null, signal: NodeJS.Signals | null) => void,
  ): Running {
    // node-pty starts the child as a session leader: its pid is the process group of everything it runs.
    const p = ptyModule.spawn(process.execPath, [CLI_MAIN, ...words], { name: term.name, cols: term.cols, rows: term.rows, cwd: process.cwd(), env, encoding: null });
    p.onData((data) => {
      if (channel.writable && !channel.write(data)) {
        p.pause();
        channel.once('drain', () => p.resume());
      }
    });
    let over = false;
    channel.on('data', (data: Buffer) => {
      if (!over) p.write(data);
    });
    // node-pty reports the exit after the terminal's last output has been read.
    p.onExit(({ exitCode, signal }) => {
      over = true;
      done(signal ? null : exitCode, signal ? signalName(signal) : null);
    });
    return { pid: p.pid, exited: false, resize: (cols, rows) => p.resize(cols, rows) };
  }

  private onPipes(
    words: string[],
    env: NodeJS.ProcessEnv,
    channel: ServerChannel,
    done: (code: number | null, signal: NodeJS.Signals | null) => void,
  ): Running {
    // detached: a process group of its own, killed as a whole when the client goes.
    const child = spawn(process.execPath, [CLI_MAIN, ...words], { stdio: 'pipe', env, detached: true });
    child.stdout.pipe(channel, { end: false });
    child.stderr.pipe(channel.stderr, { end: false });
    channel.pipe(child.stdin);
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    let finished = false;
    child.once('error', (err) => {
      if (finished) return;
      finished = true;
      channel.stderr.write(`githa: cannot run ${words[0]}: ${err.message}\r\n`);
      done(REFUSED, null);
    });
    child.once('close', (code, signal) => {
      if (finished) return;
      finished = true;
      channel.unpipe(child.stdin);
      done(code, signal);
    });
    if (child.pid === undefined) return { pid: 0, exited: true };
    return { pid: child.pid, exited: false };
  }

  private loadPty(): Promise<PtyModule | Error> {
    this.pty ??= (async () => {
      const name = 'node-pty'; // a variable: node-pty is optional, not needed to build or to serve Git
      try {
        const m = (await import(name)) as PtyModule & { default?: PtyModule };
        const mod = typeof m.spawn === 'function' ? m : m.default;
        if (!mod || typeof mod.spawn !== 'function') throw new Error('node-pty has no spawn()');
        return mod;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'node-pty cannot be loaded: operator sessions run without a pseudo-terminal');
        return err as Error;
      }
    })();
    return this.pty;
  }
}

function killGroup(r: Running): void {
  if (r.pid <= 0) return;
  const kill = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-r.pid, signal);
    } catch {
      // already gone
    }
  };
  kill('SIGHUP');
  setTimeout(() => kill('SIGKILL'), KILL_AFTER_MS).unref();
}

function signalName(n: number): NodeJS.Signals {
  const found = Object.entries(constants.signals).find(([, v]) => v === n);
  return (found?.[0] ?? 'SIGKILL') as NodeJS.Signals;
}

/** A message on stderr, then exit status 2 (nothing ran), EOF and close. */
function refuse(channel: ServerChannel, message: string): void {
  channel.stderr.write(`githa: ${message}\r\n`);
  void drained(channel).then(() => {
    channel.exit(REFUSED);
    channel.end();
  });
}

/** Resolves once every byte written so far has been handed to the SSH connection. */
function drained(channel: ServerChannel): Promise<void> {
  return new Promise((resolve) => {
    if (channel.writableLength === 0 && channel.stderr.writableLength === 0) resolve();
    else channel.write(Buffer.alloc(0), () => resolve());
  });
}
