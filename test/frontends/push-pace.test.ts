import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { UserWrites } from '../../src/cluster/user-writes.js';
import { ClientTimeoutError, TooManyConnectionsError } from '../../src/errors.js';
import { PushPace, pushCutError, type PushCutReason } from '../../src/frontends/push-pace.js';

describe('PushPace', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const limits = { minBytesPerSecond: 100, rateWindowMs: 4_000, maxTransferMs: 0 };

  function watch(l = limits): { pace: PushPace; cuts: PushCutReason[] } {
    const cuts: PushCutReason[] = [];
    return { pace: new PushPace(l, (r) => cuts.push(r)), cuts };
  }

  it('allows a silent first window, then cuts a push under the rate within a quarter window', () => {
    const { pace, cuts } = watch();
    // 400 bytes are due per 4 s window; a client that sends nothing for 3.9 s is still within its first window.
    vi.advanceTimersByTime(3_900);
    expect(cuts).toEqual([]);
    pace.add(399);
    vi.advanceTimersByTime(100);
    expect(cuts).toEqual(['slow']);
    // Once only.
    vi.advanceTimersByTime(20_000);
    expect(cuts).toEqual(['slow']);
  });

  it('keeps a push that sends enough in every window, and measures the window that slides', () => {
    const { pace, cuts } = watch();
    for (let s = 0; s < 40; s++) {
      pace.add(100);
      vi.advanceTimersByTime(1_000);
    }
    expect(cuts).toEqual([]);
    // A burst and then silence: cut once the burst has left the window (4 quarters later).
    pace.add(10_000);
    vi.advanceTimersByTime(4_000);
    expect(cuts).toEqual([]);
    vi.advanceTimersByTime(1_000);
    expect(cuts).toEqual(['slow']);
  });

  it('cuts a push over maxTransferMs however fast it is, and never after stop()', () => {
    const fast = watch({ minBytesPerSecond: 0, rateWindowMs: 1_000, maxTransferMs: 10_000 });
    fast.pace.add(1e9);
    vi.advanceTimersByTime(9_999);
    expect(fast.cuts).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fast.cuts).toEqual(['too-long']);

    const done = watch({ ...limits, maxTransferMs: 10_000 });
    done.pace.stop();
    vi.advanceTimersByTime(60_000);
    expect(done.cuts).toEqual([]);
  });

  it('says why, naming the setting', () => {
    const slow = pushCutError('slow', limits);
    expect(slow).toBeInstanceOf(ClientTimeoutError);
    expect(slow.message).toBe("push stopped: its data arrived at under 100 bytes/s over 4 s (push.minBytesPerSecond); the repository's write lock is released, try again");
    expect(pushCutError('too-long', { ...limits, maxTransferMs: 3_600_000 }).message).toContain('longer than 3600 s to send (push.maxTransferMs)');
  });
});

describe('UserWrites', () => {
  it('refuses a user over the cap, counts users apart, and gives a slot back once', () => {
    const w = new UserWrites(2);
    const a1 = w.take('alice');
    w.take('alice');
    expect(() => w.take('alice')).toThrow(TooManyConnectionsError);
    expect(() => w.take('alice')).toThrow('alice already has 2 pushes in progress (push.maxLocksPerUser 2); try again when one has ended');
    expect(() => w.take('bob')).not.toThrow();
    a1();
    a1();
    expect(w.count('alice')).toBe(1);
    w.take('alice');
    expect(w.count('alice')).toBe(2);
  });
});

describe('push.* defaults', () => {
  it('has safe defaults and accepts 0 to turn the rate and duration checks off', () => {
    const base = { redis: { url: 'redis://127.0.0.1:1' }, backends: [{ id: 'b1', http: 'http://127.0.0.1:1/' }] };
    expect(buildConfig(base, {}).push).toEqual({ minBytesPerSecond: 1024, rateWindowMs: 120_000, maxTransferMs: 3_600_000, maxLocksPerUser: 10 });
    expect(buildConfig({ ...base, push: { minBytesPerSecond: 0, maxTransferMs: 0 } }, {}).push).toMatchObject({ minBytesPerSecond: 0, maxTransferMs: 0 });
    expect(() => buildConfig({ ...base, push: { maxLocksPerUser: 0 } }, {})).toThrow();
  });
});
