import { describe, expect, it } from 'vitest';
import { FailureThrottle } from '../../src/auth/throttle.js';

describe('failed-login throttle', () => {
  const make = (perAddress: number, perUser: number): { t: FailureThrottle; at: (ms: number) => void } => {
    let now = 1_000;
    const t = new FailureThrottle({ windowMs: 10_000, perAddress, perUser, now: () => now });
    return { t, at: (ms) => (now = ms) };
  };

  it('blocks an address after its limit until the oldest failure leaves the window', () => {
    const { t, at } = make(3, 0);
    for (const ms of [1_000, 2_000, 3_000]) {
      at(ms);
      expect(t.blockedFor('10.0.0.1', 'u')).toBe(0);
      t.fail('10.0.0.1', `user-${ms}`);
    }
    at(4_000);
    expect(t.blockedFor('10.0.0.1', 'anyone')).toBe(7_000);
    expect(t.blockedFor('10.0.0.2', 'anyone')).toBe(0);
    at(11_000);
    expect(t.blockedFor('10.0.0.1', 'anyone')).toBe(0);
    t.fail('10.0.0.1', 'x');
    // Failures at 2 s, 3 s and 11 s: the 2 s one leaves at 12 s.
    expect(t.blockedFor('10.0.0.1', 'x')).toBe(1_000);
  });

  it('blocks a user name from every address; a success clears the user, not the address', () => {
    const { t } = make(5, 2);
    t.fail('10.0.0.1', 'alice');
    t.fail('10.0.0.2', 'alice');
    expect(t.blockedFor('10.0.0.3', 'alice')).toBeGreaterThan(0);
    expect(t.blockedFor('10.0.0.3', 'bob')).toBe(0);
    t.succeed('alice');
    expect(t.blockedFor('10.0.0.3', 'alice')).toBe(0);
    t.fail('10.0.0.1', 'carol');
    t.fail('10.0.0.1', 'dave');
    t.fail('10.0.0.1', 'erin');
    expect(t.blockedFor('10.0.0.1', 'zed')).toBe(0);
    t.fail('10.0.0.1', 'fred');
    expect(t.blockedFor('10.0.0.1', 'zed')).toBeGreaterThan(0);
  });

  it('a limit of 0 never blocks; remembered keys are bounded', () => {
    const t = new FailureThrottle({ windowMs: 10_000, perAddress: 0, perUser: 1, maxKeys: 2 });
    for (let i = 0; i < 100; i++) t.fail('10.0.0.1', `u${i}`);
    expect(t.blockedFor('10.0.0.1', 'new')).toBe(0);
    expect(t.blockedFor('10.0.0.1', 'u99')).toBeGreaterThan(0);
    // u0 was forgotten (only the last two keys are kept).
    expect(t.blockedFor('10.0.0.1', 'u0')).toBe(0);
  });
});
