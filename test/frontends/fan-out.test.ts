import { Readable, Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FanOut } from '../../src/frontends/fan-out.js';

const CHUNK = 16 * 1024;

/** A source of `total` bytes, produced only when read (so what it produced is what the tee pulled). */
function source(total: number): Readable & { produced: () => number } {
  let produced = 0;
  const s = new Readable({
    highWaterMark: CHUNK,
    read() {
      if (produced >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, total - produced);
      produced += n;
      this.push(Buffer.alloc(n, 7));
    },
  });
  return Object.assign(s, { produced: () => produced });
}

/** A destination that takes its bytes only when told (`release`), or at once (`fast`). */
function sink(opts: { fast?: boolean; fail?: boolean } = {}): Writable & { got: () => number; release: () => void; finished: () => boolean } {
  let got = 0;
  let held: Array<() => void> = [];
  let done = false;
  const w = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, cb) {
      if (opts.fail) {
        cb(new Error('backend broke'));
        return;
      }
      const take = (): void => {
        got += chunk.length;
        cb();
      };
      if (opts.fast) take();
      else held.push(take);
    },
    final(cb) {
      done = true;
      cb();
    },
  });
  w.on('error', () => {});
  return Object.assign(w, {
    got: () => got,
    finished: () => done,
    release: () => {
      const h = held;
      held = [];
      for (const f of h) f();
    },
  });
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await turn();
}

describe('FanOut', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('holds back the source while one copy is slow: what githa holds stays within the destinations\' buffers, and every destination gets every byte and its end', async () => {
    const total = 8 * 1024 * 1024;
    const src = source(total);
    const target = sink({ fast: true });
    const slow = sink();
    const other = sink({ fast: true });
    const drops: string[] = [];
    const tee = new FanOut(src, target, [{ id: 'b2', dest: slow }, { id: 'b3', dest: other }], { stallMs: 60_000, onDrop: (id) => drops.push(id) });
    tee.start();
    await turns();
    // The slow copy took nothing: the source produced at most the buffers (source + copy's highWaterMark + a chunk), never the pack.
    expect(slow.got()).toBe(0);
    expect(src.produced()).toBeLessThanOrEqual(CHUNK + 64 * 1024 + 2 * CHUNK);
    expect(target.got()).toBe(other.got());
    let maxAhead = 0;
    while (!slow.finished()) {
      slow.release();
      await turn();
      maxAhead = Math.max(maxAhead, src.produced() - slow.got());
    }
    expect(maxAhead).toBeLessThanOrEqual(CHUNK + 64 * 1024 + 2 * CHUNK);
    expect([target.got(), slow.got(), other.got()]).toEqual([total, total, total]);
    expect([target.finished(), other.finished()]).toEqual([true, true]);
    expect(drops).toEqual([]);
    expect(tee.endedTo('b2')).toBe(true);
    expect(tee.dropReason('b2')).toBeUndefined();
  });

  it('drops a copy that takes nothing for stallMs while the others wait on it; the target and the other copy get the whole push', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const total = 1024 * 1024;
    const src = source(total);
    const target = sink({ fast: true });
    const stuck = sink();
    const other = sink({ fast: true });
    const drops: Array<[string, string]> = [];
    const tee = new FanOut(src, target, [{ id: 'b2', dest: stuck }, { id: 'b3', dest: other }], { stallMs: 500, onDrop: (id, why) => drops.push([id, why]) });
    tee.start();
    await turns();
    const before = target.got();
    expect(before).toBeLessThan(total);
    vi.advanceTimersByTime(499);
    await turns();
    expect(drops).toEqual([]);
    expect(target.got()).toBe(before);
    vi.advanceTimersByTime(1);
    await turns();
    expect(drops).toEqual([['b2', 'stalled']]);
    // Destroyed before the end: its caller's teardown cuts its backend request short.
    expect(stuck.destroyed).toBe(true);
    expect(stuck.finished()).toBe(false);
    await turns(200);
    expect([target.got(), other.got()]).toEqual([total, total]);
    expect([target.finished(), other.finished()]).toEqual([true, true]);
    expect(tee.dropReason('b2')).toBe('stalled');
    expect(tee.endedTo('b2')).toBe(false);
    expect(tee.endedTo('b3')).toBe(true);
  });

  it('starts no copy\'s clock while the target itself is full: the copies are not what holds the push', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const src = source(1024 * 1024);
    const target = sink();
    const copy = sink();
    const drops: string[] = [];
    const tee = new FanOut(src, target, [{ id: 'b2', dest: copy }], { stallMs: 500, onDrop: (id) => drops.push(id) });
    tee.start();
    await turns();
    vi.advanceTimersByTime(5_000);
    await turns();
    expect(drops).toEqual([]);
    // The target takes what it holds; the copy still does not: its clock starts now.
    while (target.writableLength > 0) {
      target.release();
      await turn();
    }
    target.release();
    vi.advanceTimersByTime(499);
    await turns();
    expect(drops).toEqual([]);
    vi.advanceTimersByTime(1);
    await turns();
    expect(drops).toEqual(['b2']);
    tee.detach('test over');
  });

  it('drops a copy whose destination fails; the target and the other copy go on to the end', async () => {
    const total = 512 * 1024;
    const src = source(total);
    const target = sink({ fast: true });
    const broken = sink({ fail: true });
    const other = sink({ fast: true });
    const drops: Array<[string, string]> = [];
    const tee = new FanOut(src, target, [{ id: 'b2', dest: broken }, { id: 'b3', dest: other }], { stallMs: 60_000, onDrop: (id, why) => drops.push([id, why]) });
    tee.start();
    await turns(200);
    expect(drops).toEqual([['b2', 'failed: backend broke']]);
    expect([target.got(), other.got()]).toEqual([total, total]);
    expect([target.finished(), other.finished()]).toEqual([true, true]);
    expect(tee.endedTo('b2')).toBe(false);
  });

  it('drops a copy still holding bytes stallMs after the source ended', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    // Smaller than the copy's buffer: every write is taken, the copy never reports itself full.
    const src = source(8 * 1024);
    const target = sink({ fast: true });
    const stuck = sink();
    const drops: string[] = [];
    const tee = new FanOut(src, target, [{ id: 'b2', dest: stuck }], { stallMs: 500, onDrop: (id) => drops.push(id) });
    tee.start();
    await turns();
    expect(target.finished()).toBe(true);
    vi.advanceTimersByTime(500);
    await turns();
    expect(drops).toEqual(['b2']);
    expect(stuck.destroyed).toBe(true);
  });

  it('destroys every destination with the source\'s error (the client went away)', async () => {
    const src = new Readable({ read() {} });
    const target = sink({ fast: true });
    const copy = sink({ fast: true });
    const tee = new FanOut(src, target, [{ id: 'b2', dest: copy }], { stallMs: 500 });
    tee.start();
    src.push(Buffer.alloc(100));
    await turns();
    src.destroy(new Error('client gone'));
    await turns();
    expect(target.destroyed).toBe(true);
    expect(copy.destroyed).toBe(true);
    expect(target.errored?.message).toBe('client gone');
    expect(tee.endedTo('b2')).toBe(false);
  });
});
