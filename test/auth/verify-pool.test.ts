import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { bcrypt, bcryptVerify } from 'hash-wasm';
import { afterEach, describe, expect, it } from 'vitest';
import { VerifyPool } from '../../src/auth/verify-pool.js';
import { ServerBusyError } from '../../src/errors.js';

const hashOf = (password: string, costFactor: number): Promise<string> => bcrypt({ password, salt: randomBytes(16), costFactor, outputType: 'encoded' });

describe('password verification pool', () => {
  const pools: VerifyPool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });
  const make = (workers: number, maxQueue: number): VerifyPool => {
    const p = new VerifyPool({ workers, maxQueue });
    pools.push(p);
    return p;
  };

  it('verifies in a worker: the event loop is not blocked for a bcrypt verification', async () => {
    const hash = await hashOf('right', 10);
    // What one verification blocks a thread for (here, on the main thread, on purpose).
    const t0 = performance.now();
    await bcryptVerify({ password: 'wrong', hash });
    const blocking = performance.now() - t0;
    const pool = make(2, 8);
    await pool.verify({ target: { kind: 'bcrypt', hash }, password: 'warm-up', pad: undefined });
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.verify({ target: { kind: 'bcrypt', hash }, password: i === 0 ? 'right' : `wrong-${i}`, pad: undefined })));
    delay.disable();
    expect(results).toEqual([true, false, false, false, false, false]);
    // Six verifications took at least three `blocking` periods on two workers; the loop never stalled for one.
    expect(delay.mean / 1e6).toBeLessThan(blocking / 3);
  });

  it('refuses with ServerBusyError when maxQueue checks already wait', async () => {
    const hash = await hashOf('right', 8);
    const pool = make(1, 2);
    const job = { target: { kind: 'bcrypt' as const, hash }, password: 'x', pad: undefined };
    // One runs, two wait: the fourth is refused at once, the others still finish.
    const accepted = [pool.verify(job), pool.verify(job), pool.verify(job)];
    await expect(pool.verify(job)).rejects.toBeInstanceOf(ServerBusyError);
    expect(await Promise.all(accepted)).toEqual([false, false, false]);
    expect(pool.load).toBe(0);
  });

  it('an unknown user and a wrong token are verified against the pad (costing a slow hash), and never accepted', async () => {
    const pad = { kind: 'bcrypt' as const, hash: await hashOf('pad-password', 4) };
    const pool = make(1, 4);
    // Even the pad's own password is no login for an unknown user.
    expect(await pool.verify({ target: undefined, password: 'pad-password', pad })).toBe(false);
    const token = { kind: 'token' as const, hash: `$sha256$${'0'.repeat(64)}` };
    expect(await pool.verify({ target: token, password: 'pad-password', pad })).toBe(false);
  });
});
