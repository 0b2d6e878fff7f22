/**
 * Password verification off the event loop (docs/security.md "Brute force").
 * bcrypt and argon2 are slow on purpose (tens of milliseconds a try): run on
 * githa's main thread, every wrong password an attacker sends would stall every
 * other client. A few worker threads verify instead, one job each at a time;
 * at most `maxQueue` jobs wait for one, and more are refused with
 * ServerBusyError (503 + Retry-After) rather than queued without bound.
 *
 * Every job, token or not, runs in a worker, and a failed token check (or an
 * unknown user's) is followed by a verification against `pad`, a slow hash of
 * the cost the users file's slow hashes have: a failure then costs the same
 * whatever kind of account it was for, and timing does not tell them apart.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { ServerBusyError } from '../errors.js';

export interface HashRef {
  readonly kind: 'bcrypt' | 'argon2' | 'token';
  readonly hash: string;
}

export interface VerifyJob {
  /** The hash to check against; undefined for an unknown user (only `pad` is verified, and the answer is no). */
  readonly target: HashRef | undefined;
  readonly password: string;
  /** Verified (result ignored) after a failed fast check, so that failures cost alike. */
  readonly pad: HashRef | undefined;
}

export interface VerifyPoolOptions {
  workers: number;
  /** Jobs that may wait for a worker; one more is refused. */
  maxQueue: number;
}

/**
 * The worker's code, evaluated as a CommonJS script (so the same code runs
 * from dist/ and from the TypeScript sources in unit tests); hash-wasm is
 * loaded from the path githa itself resolves.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash, timingSafeEqual } = require('node:crypto');
const { argon2Verify, bcryptVerify } = require(workerData.hashWasm);
async function check(ref, password) {
  try {
    if (ref.kind === 'bcrypt') return await bcryptVerify({ password, hash: ref.hash });
    if (ref.kind === 'argon2') return await argon2Verify({ password, hash: ref.hash });
    const want = Buffer.from(ref.hash.slice('$sha256$'.length), 'hex');
    const got = createHash('sha256').update(password, 'utf8').digest();
    return want.length === got.length && timingSafeEqual(got, want);
  } catch {
    return false;
  }
}
parentPort.on('message', async (job) => {
  const ok = job.target ? await check(job.target, job.password) : false;
  const paid = job.target && job.target.kind !== 'token';
  if (!ok && !paid && job.pad) await check(job.pad, job.password);
  parentPort.postMessage(ok);
});
`;

interface Pending {
  job: VerifyJob;
  resolve: (ok: boolean) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  current: Pending | undefined;
}

export class VerifyPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private readonly hashWasm = createRequire(import.meta.url).resolve('hash-wasm');
  private closed = false;

  constructor(private readonly options: VerifyPoolOptions) {
    for (let i = 0; i < Math.max(1, options.workers); i++) this.slots.push(this.spawn());
  }

  /** Jobs running or waiting now. */
  get load(): number {
    return this.queue.length + this.slots.filter((s) => s.current).length;
  }

  /** Whether `password` matches `job.target`; throws ServerBusyError when the queue is full. */
  verify(job: VerifyJob): Promise<boolean> {
    if (this.closed) return Promise.reject(new ServerBusyError('githa is shutting down; try again later'));
    const idle = this.slots.find((s) => !s.current);
    if (!idle && this.queue.length >= this.options.maxQueue) {
      return Promise.reject(new ServerBusyError('too many password checks are waiting; try again later'));
    }
    return new Promise((resolve, reject) => {
      const p = { job, resolve, reject };
      if (idle) this.start(idle, p);
      else this.queue.push(p);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new ServerBusyError('githa is shutting down; try again later'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { hashWasm: this.hashWasm } });
    // Idle workers must not keep a stopping githa alive.
    worker.unref();
    const slot: Slot = { worker, current: undefined };
    worker.on('message', (ok: unknown) => {
      const p = slot.current;
      slot.current = undefined;
      p?.resolve(ok === true);
      this.next(slot);
    });
    // A worker that dies fails its job (a refusal, never a login) and is replaced.
    const replace = (err: unknown): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      slot.current?.reject(err);
      slot.current = undefined;
      if (this.closed) return;
      const fresh = this.spawn();
      this.slots[i] = fresh;
      this.next(fresh);
    };
    worker.on('error', replace);
    worker.on('exit', (code) => replace(new ServerBusyError(`a password check failed (worker exit ${code}); try again later`)));
    return slot;
  }

  private start(slot: Slot, p: Pending): void {
    slot.current = p;
    slot.worker.postMessage(p.job);
  }

  private next(slot: Slot): void {
    const p = this.queue.shift();
    if (p) this.start(slot, p);
  }
}
