import { describe, expect, it } from 'vitest';
import { LimitExceededError, ServerBusyError } from '../../src/errors.js';
import { HeldBytes } from '../../src/frontends/held-bytes.js';

const calmHeap = () => ({ used: 10, limit: 1000 });

describe('HeldBytes (memory budgets)', () => {
  it('refuses a take past the request budget (413) before counting it', () => {
    const acct = new HeldBytes(1000, 100, calmHeap);
    const b = acct.open();
    b.take(60, 'the push command list');
    expect(() => b.take(41, 'the push command list')).toThrow(LimitExceededError);
    expect(() => b.take(41, 'the push command list')).toThrow(/^the push command list is larger than githa holds for one request \(100 bytes, memory\.maxHeldBytesPerRequest\)$/);
    expect(acct.stats()).toMatchObject({ held: 60, peak: 60, refused: { request: 2, process: 0, heap: 0 } });
    expect(b.room()).toBe(40);
    b.release();
    b.release();
    expect(acct.stats().held).toBe(0);
  });

  it('refuses a hold past the process budget (503) and new work once it is full', () => {
    const acct = new HeldBytes(250, 100, calmHeap);
    const [a, b, c] = [acct.open(), acct.open(), acct.open()];
    a.take(100, 'x');
    b.hold(100);
    expect(() => c.take(51, 'x')).toThrow(ServerBusyError);
    expect(() => c.hold(51)).toThrow(/memory\.maxHeldBytes/);
    c.take(50, 'x');
    expect(() => acct.open()).toThrow(ServerBusyError);
    // A report is counted, never refused.
    c.charge(10);
    expect(acct.stats()).toMatchObject({ held: 260, peak: 260, limit: 250, refused: { process: 3 } });
    a.release();
    b.release();
    c.release();
    expect(acct.stats().held).toBe(0);
    expect(acct.open().room()).toBe(100);
  });

  it('refuses new work while the heap is near its limit', () => {
    let used = 10;
    const acct = new HeldBytes(1000, 100, () => ({ used, limit: 1000 }));
    acct.open();
    used = 900;
    expect(() => acct.open()).toThrow(/short of memory/);
    expect(acct.stats().refused.heap).toBe(1);
  });

  it('defaults the process budget to a quarter of the heap limit', () => {
    expect(HeldBytes.defaultLimit()).toBeGreaterThan(16 * 1024 * 1024);
  });
});
