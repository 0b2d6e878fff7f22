/**
 * The per-backend health state machine (src/cluster/health.ts), with injected
 * clocks: probes flip a backend only after consecutive results, request-time
 * marks are immediate and lapse after downForMs unless a probe confirms them.
 */
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../src/errors.js';
import { Health, saysBackendDown } from '../../src/cluster/health.js';

function setup(overrides: Partial<{ downForMs: number; failuresToDown: number; successesToUp: number }> = {}) {
  const clock = { mono: 1_000, wall: 1_700_000_000_000 };
  const health = new Health({
    downForMs: 5_000,
    failuresToDown: 2,
    successesToUp: 2,
    ...overrides,
    now: () => clock.mono,
    wallClock: () => clock.wall,
  });
  const events: Array<[string, boolean]> = [];
  health.onChange((id, up) => events.push([id, up]));
  const advance = (ms: number): void => {
    clock.mono += ms;
    clock.wall += ms;
  };
  return { health, events, clock, advance };
}

describe('Health', () => {
  it('treats a backend never seen as healthy', () => {
    const { health, events } = setup();
    expect(health.isHealthy('b1')).toBe(true);
    health.markUp('b1');
    expect(health.isHealthy('b1')).toBe(true);
    expect(events).toEqual([]);
  });

  it('marks a backend down only after failuresToDown consecutive failed probes', () => {
    const { health, events } = setup({ failuresToDown: 3 });
    health.probeResult('b1', false, 'refused');
    health.probeResult('b1', false, 'refused');
    expect(health.isHealthy('b1')).toBe(true);
    // A good probe in between starts the count again.
    health.probeResult('b1', true);
    health.probeResult('b1', false, 'refused');
    health.probeResult('b1', false, 'refused');
    expect(health.isHealthy('b1')).toBe(true);
    health.probeResult('b1', false, 'timed out');
    expect(health.isHealthy('b1')).toBe(false);
    expect(events).toEqual([['b1', false]]);
    expect(health.snapshot()).toEqual([{ id: 'b1', up: false, since: expect.any(Number), detail: 'timed out' }]);
  });

  it('needs successesToUp consecutive good probes to bring a down backend back', () => {
    const { health, events } = setup({ successesToUp: 3 });
    health.probeResult('b1', false);
    health.probeResult('b1', false);
    expect(health.isHealthy('b1')).toBe(false);
    health.probeResult('b1', true);
    health.probeResult('b1', true);
    health.probeResult('b1', false, 'flapped');
    health.probeResult('b1', true);
    health.probeResult('b1', true);
    expect(health.isHealthy('b1')).toBe(false);
    health.probeResult('b1', true);
    expect(health.isHealthy('b1')).toBe(true);
    expect(events).toEqual([
      ['b1', false],
      ['b1', true],
    ]);
  });

  it('keeps backends apart', () => {
    const { health } = setup({ failuresToDown: 1 });
    health.probeResult('b1', false);
    expect(health.isHealthy('b1')).toBe(false);
    expect(health.isHealthy('b2')).toBe(true);
  });

  it('marks a backend down at once on a request-time error, and lets the mark lapse after downForMs', () => {
    const { health, events, advance } = setup({ downForMs: 5_000 });
    health.markDown('b1');
    expect(health.isHealthy('b1')).toBe(false);
    advance(4_999);
    expect(health.isHealthy('b1')).toBe(false);
    advance(1);
    expect(health.isHealthy('b1')).toBe(true);
    expect(events).toEqual([
      ['b1', false],
      ['b1', true],
    ]);
  });

  it('renews a request-time mark on every further error', () => {
    const { health, advance } = setup({ downForMs: 5_000 });
    health.markDown('b1');
    advance(4_000);
    health.markDown('b1');
    advance(4_000);
    expect(health.isHealthy('b1')).toBe(false);
    advance(1_000);
    expect(health.isHealthy('b1')).toBe(true);
  });

  it('holds a request-time mark that a failed probe confirms, until the probes say up', () => {
    const { health, events, advance } = setup({ downForMs: 1_000, successesToUp: 2 });
    health.markDown('b1');
    health.probeResult('b1', false, 'refused');
    advance(60_000);
    expect(health.isHealthy('b1')).toBe(false);
    expect(health.snapshot()[0]).toMatchObject({ up: false, detail: 'refused' });
    health.probeResult('b1', true);
    expect(health.isHealthy('b1')).toBe(false);
    health.probeResult('b1', true);
    expect(health.isHealthy('b1')).toBe(true);
    expect(events).toEqual([
      ['b1', false],
      ['b1', true],
    ]);
  });

  it('lets good probes end a request-time mark before downForMs', () => {
    const { health, advance } = setup({ downForMs: 60_000, successesToUp: 2 });
    health.markDown('b1');
    health.probeResult('b1', true);
    advance(100);
    expect(health.isHealthy('b1')).toBe(false);
    health.probeResult('b1', true);
    expect(health.isHealthy('b1')).toBe(true);
  });

  it('takes a served request as evidence: it lifts a request-time mark at once', () => {
    const { health, events } = setup();
    health.markDown('b1');
    health.markUp('b1');
    expect(health.isHealthy('b1')).toBe(true);
    expect(events).toEqual([
      ['b1', false],
      ['b1', true],
    ]);
  });

  it('counts a served request as one good probe when probes marked the backend down', () => {
    const { health } = setup({ successesToUp: 2 });
    health.probeResult('b1', false);
    health.probeResult('b1', false);
    health.markUp('b1');
    expect(health.isHealthy('b1')).toBe(false);
    health.probeResult('b1', true);
    expect(health.isHealthy('b1')).toBe(true);
  });

  it('lets a served request break a run of failed probes', () => {
    const { health } = setup({ failuresToDown: 2 });
    health.probeResult('b1', false);
    health.markUp('b1');
    health.probeResult('b1', false);
    expect(health.isHealthy('b1')).toBe(true);
  });

  it('starts a backend down from a shared verdict, held until good probes', () => {
    const { health, events, advance } = setup({ downForMs: 10, successesToUp: 2 });
    health.seed('b2', false, 'down as seen by githa-2');
    advance(60_000);
    expect(health.isHealthy('b2')).toBe(false);
    expect(health.snapshot(['b1', 'b2'])).toEqual([
      { id: 'b1', up: true, since: 1_700_000_000_000 },
      { id: 'b2', up: false, since: 1_700_000_000_000, detail: 'down as seen by githa-2' },
    ]);
    health.probeResult('b2', true);
    health.probeResult('b2', true);
    expect(health.isHealthy('b2')).toBe(true);
    expect(events).toEqual([
      ['b2', false],
      ['b2', true],
    ]);
  });

  it('records when the last transition happened, and drops the detail once up', () => {
    const { health, advance } = setup({ failuresToDown: 1, successesToUp: 1 });
    advance(1_000);
    health.probeResult('b1', false, 'HTTP probe answered 503');
    expect(health.snapshot()).toEqual([{ id: 'b1', up: false, since: 1_700_000_001_000, detail: 'HTTP probe answered 503' }]);
    advance(2_000);
    health.probeResult('b1', true);
    expect(health.snapshot()).toEqual([{ id: 'b1', up: true, since: 1_700_000_003_000 }]);
  });

  it('unsubscribes listeners, and survives a listener that throws', () => {
    const { health, events } = setup({ failuresToDown: 1 });
    const seen: boolean[] = [];
    const off = health.onChange((_, up) => seen.push(up));
    health.onChange(() => {
      throw new Error('listener bug');
    });
    health.probeResult('b1', false);
    off();
    health.probeResult('b1', true);
    health.probeResult('b1', true);
    expect(seen).toEqual([false]);
    expect(events).toEqual([
      ['b1', false],
      ['b1', true],
    ]);
  });
});

describe('saysBackendDown: a request marks a backend down only when nothing listens there', () => {
  const sysError = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`connect ${code} 127.0.0.1:9418`), { code });
  const wrapped = (cause?: unknown): BackendUnavailableError => new BackendUnavailableError('backend b1 is unreachable over git://', 'b1', { cause });

  it.each(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND'])('down: %s (also as the cause of a cause)', (code) => {
    expect(saysBackendDown(wrapped(sysError(code)))).toBe(true);
    expect(saysBackendDown(wrapped(new Error('ssh', { cause: sysError(code) })))).toBe(true);
  });

  it.each([
    ['a connect timeout (a full listen queue of a busy git daemon)', wrapped()],
    ['a reset (sshd past MaxStartups)', wrapped(sysError('ECONNRESET'))],
    ['a broken pipe', wrapped(sysError('EPIPE'))],
    ['a time-out error', wrapped(sysError('ETIMEDOUT'))],
    ['no error at all', undefined],
  ])('busy, not down: %s', (_what, err) => {
    expect(saysBackendDown(err)).toBe(false);
  });
});
