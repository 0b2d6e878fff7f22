/**
 * The legitimate clients of the soak: real git, in a loop over HTTP (alice,
 * a bcrypt user), SSH and git://, each a clone, a fetch and a push of its own
 * repository (one writer per repository: every push fast-forwards). Every
 * operation's wall time is recorded with its phase.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SoakEnv } from './env.js';
import type { Op } from './summary.js';

const execFileP = promisify(execFile);
const TRANSPORTS = ['http', 'ssh', 'git'] as const;

export class LegitWorker {
  readonly ops: Array<Op & { phase: string }> = [];
  phase = 'setup';
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  private readonly work: string;
  private n = 0;

  constructor(
    private readonly env: SoakEnv,
    private readonly index: number,
  ) {
    this.work = join(env.git.work, `w${index}`);
  }

  private url(t: (typeof TRANSPORTS)[number]): string {
    const g = this.env.githa;
    const repo = `${this.env.repos.legit[this.index]}.git`;
    if (t === 'http') return `http://alice:${this.env.alice}@127.0.0.1:${g.httpPort}/${repo}`;
    if (t === 'ssh') return `ssh://git@127.0.0.1:${g.sshPort}/${repo}`;
    return `git://127.0.0.1:${g.gitPort}/${repo}`;
  }

  private async git(args: string[], cwd?: string): Promise<void> {
    await execFileP('git', args, { env: this.env.git.env, cwd, timeout: 120_000, killSignal: 'SIGKILL', maxBuffer: 1 << 26 });
  }

  private async timed(kind: string, f: () => Promise<void>): Promise<void> {
    const t0 = performance.now();
    const phase = this.phase;
    try {
      await f();
      this.ops.push({ kind, ms: performance.now() - t0, ok: true, phase });
    } catch (err) {
      const error = (err instanceof Error ? err.message : String(err)).replace(/alice:[^@]*@/g, 'alice:***@').slice(0, 400);
      this.ops.push({ kind, ms: performance.now() - t0, ok: false, error, phase });
    }
  }

  private async commit(): Promise<void> {
    this.n++;
    writeFileSync(join(this.work, 'counter.txt'), `${this.n}\n`);
    writeFileSync(join(this.work, `file-${this.n % 20}.txt`), `${this.n} ${'x'.repeat(2000)}\n`);
    await this.git(['add', '-A'], this.work);
    await this.git(['commit', '-q', '-m', `soak ${this.n}`], this.work);
  }

  /** The first commit, pushed over HTTP (not timed). */
  async setup(): Promise<void> {
    mkdirSync(this.work, { recursive: true });
    await this.git(['init', '-q', '-b', 'main'], this.work);
    await this.commit();
    await this.git(['push', '-q', this.url('http'), 'HEAD:main'], this.work);
  }

  start(): void {
    this.done = (async () => {
      for (let round = 0; !this.stopped; round++) {
        for (const t of TRANSPORTS) {
          if (this.stopped) break;
          const clone = join(this.env.git.work, `clone-w${this.index}`);
          rmSync(clone, { recursive: true, force: true });
          await this.timed(`${t} clone`, () => this.git(['clone', '-q', this.url(t), clone]));
          rmSync(clone, { recursive: true, force: true });
          await this.timed(`${t} fetch`, () => this.git(['fetch', '-q', this.url(t), 'main'], this.work));
          await this.commit();
          await this.timed(`${t} push`, () => this.git(['push', '-q', this.url(t), 'HEAD:main'], this.work));
        }
      }
    })();
  }

  /** Stops after the operation under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}
