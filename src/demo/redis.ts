/** A throwaway redis-server on 127.0.0.1 (no config file, no RDB snapshots, optional AOF). */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LOCALHOST, PortServer, exchange, minimalEnv, run, type PidTracker, type ServerState } from './process.js';

export interface DevRedis {
  /** 'redis://127.0.0.1:P' */
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
  readonly state: ServerState;
  /** `signal` (default SIGTERM: redis shuts down cleanly, flushing the AOF) then SIGKILL after 5 s. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Restarts on the same port (with AOF on, the data comes back). */
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  /** Runs `redis-cli -h 127.0.0.1 -p P ...args` and returns its output without the final newline. */
  cli(...args: string[]): Promise<string>;
}

export interface DevRedisOptions {
  dir: string;
  aof: boolean;
  tracker?: PidTracker;
}

export class DevRedisImpl implements DevRedis {
  private readonly server: PortServer;

  constructor(o: DevRedisOptions) {
    mkdirSync(o.dir, { recursive: true });
    this.server = new PortServer({
      name: 'redis',
      logFile: join(o.dir, 'redis.log'),
      tracker: o.tracker,
      build: (port) => ({
        command: 'redis-server',
        args: [
          '--port', String(port),
          '--bind', LOCALHOST,
          '--protected-mode', 'no',
          '--save', '',
          '--appendonly', o.aof ? 'yes' : 'no',
          // With AOF, every write is on disk before Redis answers: a SIGKILLed Redis loses
          // no acknowledged version, from its first write after a (re)start on. (A CONFIG SET
          // after the start would leave a window in which githa's writes are not yet fsynced.)
          ...(o.aof ? ['--appendfsync', 'always'] : []),
          '--dir', o.dir,
          '--daemonize', 'no',
          '--enable-debug-command', 'local',
        ],
        env: minimalEnv(),
        cwd: o.dir,
      }),
      // Not ready while loading the AOF (-LOADING).
      probe: async (port) => (await exchange(port, 'PING\r\n', 1000))?.startsWith('+PONG') ?? false,
    });
  }

  get port(): number {
    return this.server.port;
  }

  get url(): string {
    return `redis://${LOCALHOST}:${this.server.port}`;
  }

  get logFile(): string {
    return this.server.logFile;
  }

  get state(): ServerState {
    return this.server.state;
  }

  start(): Promise<void> {
    return this.server.start();
  }

  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return this.server.stop(signal);
  }

  pause(): void {
    this.server.pause();
  }

  resume(): void {
    this.server.resume();
  }

  async cli(...args: string[]): Promise<string> {
    const out = await run('redis-cli', ['-h', LOCALHOST, '-p', String(this.server.port), ...args]);
    return out.replace(/\r?\n$/, '');
  }
}
