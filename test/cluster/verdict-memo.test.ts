import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoKind, VerdictMemo } from '../../src/cluster/verdict-memo.js';
import { discoveryListing, lsRefsListing } from '../../src/frontends/http/held-answer.js';
import { advertisementLive, lsRefsLive } from '../../src/frontends/stream/judged-listing.js';
import { MessageHold } from '../../src/protocol/held-listing.js';
import { encodePkt, FLUSH_PKT } from '../../src/protocol/pkt-line.js';

/*
 * Memoized listing verdicts (src/cluster/verdict-memo.ts, docs/performance.md
 * "F2: memoized verdicts"): a pure cache. A hit returns exactly what the
 * computation returns for the same bytes read the same way; another reading
 * of the same bytes never hits; the bounds hold.
 */

/** Every listing memoized (no minimum size), and one that never memoizes: the slow path. */
const memo = (): VerdictMemo => new VerdictMemo({ maxEntries: 1000, maxBytes: 64 * 1024 * 1024, minListingBytes: 0 });
const never = (): VerdictMemo => new VerdictMemo({ maxEntries: 0, maxBytes: 0, minListingBytes: Infinity });

const hex = fc.stringMatching(/^[0-9a-f]{40}$/);
const refName = fc.stringMatching(/^refs\/(heads|tags|notes)\/[a-z0-9][a-z0-9._-]{0,12}$/).filter((n) => !n.endsWith('.lock') && !n.includes('..') && !n.endsWith('.'));
const ref = fc.record({ oid: hex, name: refName, peeled: fc.option(hex, { nil: undefined }) });
const refsArb = fc.uniqueArray(ref, { selector: (r) => r.name, maxLength: 30 }).map((rs) => [...rs].sort((a, b) => (a.name < b.name ? -1 : 1)));

function lsRefsBytes(refs: { oid: string; name: string; peeled?: string }[], head?: string): Buffer {
  const lines = refs.map((r) => encodePkt(`${r.oid} ${r.name}${r.peeled ? ` peeled:${r.peeled}` : ''}\n`));
  if (head !== undefined) lines.unshift(encodePkt(`${head} HEAD symref-target:refs/heads/main\n`));
  return Buffer.concat([...lines, FLUSH_PKT]);
}

function v0Bytes(refs: { oid: string; name: string; peeled?: string }[]): Buffer {
  const lines: Buffer[] = [];
  refs.forEach((r, i) => {
    lines.push(encodePkt(i === 0 ? `${r.oid} ${r.name}\0multi_ack ofs-delta\n` : `${r.oid} ${r.name}\n`));
    if (r.peeled) lines.push(encodePkt(`${r.peeled} ${r.name}^{}\n`));
  });
  return Buffer.concat([...lines, FLUSH_PKT]);
}

const discovery = (v0: Buffer): Buffer => Buffer.concat([encodePkt('# service=git-upload-pack\n'), FLUSH_PKT, v0]);

/** A listing, sometimes broken (a byte flipped, cut short): the memo must give the same verdict on bad bytes too. */
const damaged = (bytes: Buffer, at: number, how: number): Buffer => {
  if (how === 0 || bytes.length === 0) return bytes;
  const i = at % bytes.length;
  if (how === 1) return bytes.subarray(0, i);
  const copy = Buffer.from(bytes);
  copy[i] = (copy[i] as number) ^ 0x20;
  return copy;
};

const held = (bytes: Buffer) => {
  try {
    const got = new MessageHold(Infinity).write(bytes);
    return got === undefined || got === 'over-cap' ? undefined : got;
  } catch {
    return undefined; // not pkt-lines: never held as a message
  }
};

/** What a call returns, or the error it throws (a hit must throw alike: nothing is stored for it). */
function outcome<T>(f: () => T): T | { threw: string } {
  try {
    return f();
  } catch (err) {
    return { threw: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

const prefixesArb = fc.subarray(['refs/heads/', 'refs/tags/', 'refs/notes/', 'HEAD']);

describe('memoized listing verdicts: a hit gives what the slow path gives', () => {
  it('HTTP: v0 advertisements and ls-refs answers, whole or damaged', () => {
    fc.assert(
      fc.property(refsArb, fc.option(hex, { nil: undefined }), prefixesArb, fc.nat(), fc.integer({ min: 0, max: 2 }), (refs, head, prefixes, at, how) => {
        const m = memo();
        const adv = damaged(discovery(v0Bytes(refs)), at, how);
        const ls = damaged(lsRefsBytes(refs, head), at, how);
        for (let i = 0; i < 2; i++) {
          // A copy of the bytes each time: the key is the bytes, never the Buffer object.
          expect(outcome(() => discoveryListing(Buffer.from(adv), 'git-upload-pack', m))).toEqual(outcome(() => discoveryListing(adv, 'git-upload-pack', never())));
          const body = Buffer.from(ls);
          const got = lsRefsListing(body, prefixes, m);
          expect(got).toEqual(lsRefsListing(ls, prefixes, never()));
          // The caller's own body stands in for an answer passed on whole.
          if (got.kind === 'copy' && got.out.equals(body)) expect(got.out).toBe(body);
        }
        expect(m.stats().hits).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 200 },
    );
  });

  it('SSH and git://: v0 advertisements and ls-refs answers', () => {
    fc.assert(
      fc.property(refsArb, fc.option(hex, { nil: undefined }), prefixesArb, fc.nat(), fc.integer({ min: 0, max: 2 }), (refs, head, prefixes, at, how) => {
        const m = memo();
        const adv = held(damaged(v0Bytes(refs), at, how === 1 ? 0 : how));
        const ls = held(damaged(lsRefsBytes(refs, head), at, how === 1 ? 0 : how));
        fc.pre(adv !== undefined && ls !== undefined);
        for (let i = 0; i < 2; i++) {
          expect(advertisementLive(adv!, m)).toEqual(advertisementLive(adv!, never()));
          expect(lsRefsLive(ls!, prefixes, m)).toEqual(lsRefsLive(ls!, prefixes, never()));
        }
        expect(m.stats().hits).toBe(2);
      }),
      { numRuns: 200 },
    );
  });
});

describe('VerdictMemo', () => {
  const bytes = Buffer.from('0032' + 'a'.repeat(40) + ' refs/heads/main\n' + '0000');

  it('the same bytes read another way never hit: kind, parameters', () => {
    const m = memo();
    const a = new MemoKind<string>('test-a');
    const b = new MemoKind<string>('test-b');
    expect(m.get(a, 'x', bytes, () => 'a x')).toBe('a x');
    expect(m.get(b, 'x', bytes, () => 'b x')).toBe('b x');
    expect(m.get(a, 'y', bytes, () => 'a y')).toBe('a y');
    expect(m.get(a, '', bytes, () => 'a -')).toBe('a -');
    expect(m.stats()).toMatchObject({ hits: 0, misses: 4, entries: 4 });
    expect(m.get(a, 'x', Buffer.from(bytes), () => 'recomputed')).toBe('a x');
    expect(m.get(a, 'x', Buffer.concat([bytes, Buffer.from('0000')]), () => 'longer')).toBe('longer');
    expect(m.stats().hits).toBe(1);
  });

  it('HTTP ls-refs: other prefixes, or the same bytes as an advertisement, are judged anew', () => {
    const m = memo();
    const ls = lsRefsBytes([{ oid: 'a'.repeat(40), name: 'refs/heads/main' }, { oid: 'b'.repeat(40), name: 'refs/tags/v1' }]);
    const heads = lsRefsListing(ls, ['refs/heads/'], m);
    const tags = lsRefsListing(ls, ['refs/tags/'], m);
    expect(heads.kind === 'copy' && tags.kind === 'copy' && !heads.out.equals(tags.out)).toBe(true);
    expect(m.stats().hits).toBe(0);
    // An ls-refs answer read as a v0 advertisement parses differently (two oids a line would not): its own verdict.
    expect(discoveryListing(ls, 'git-upload-pack', m)).toEqual(discoveryListing(ls, 'git-upload-pack', never()));
    expect(m.stats().hits).toBe(0);
  });

  it('a kind is defined once', () => {
    new MemoKind('test-once');
    expect(() => new MemoKind('test-once')).toThrow(/twice/);
  });

  it('a computation that throws stores nothing', () => {
    const m = memo();
    const k = new MemoKind<number>('test-throws');
    expect(() => m.get(k, '', bytes, () => { throw new Error('boom'); })).toThrow('boom');
    expect(m.get(k, '', bytes, () => 7)).toBe(7);
    expect(m.stats()).toMatchObject({ hits: 0, entries: 1 });
  });

  it('keeps at most maxEntries, the least recently used going first', () => {
    const m = new VerdictMemo({ maxEntries: 3, maxBytes: 1e9, minListingBytes: 0 });
    const k = new MemoKind<number>('test-lru');
    const key = (i: number): Buffer => Buffer.from(`listing ${i}`);
    for (let i = 0; i < 3; i++) m.get(k, '', key(i), () => i);
    m.get(k, '', key(0), () => -1); // 0 is now the most recent
    m.get(k, '', key(3), () => 3); // evicts 1
    expect(m.stats().entries).toBe(3);
    expect(m.get(k, '', key(0), () => -1)).toBe(0);
    expect(m.get(k, '', key(1), () => -1)).toBe(-1);
  });

  it('keeps at most maxBytes, counting what values hold; one too large is not kept', () => {
    const m = new VerdictMemo({ maxEntries: 1000, maxBytes: 10_000, minListingBytes: 0 });
    const k = new MemoKind<Buffer>('test-bytes', (v) => v.length);
    for (let i = 0; i < 20; i++) {
      m.get(k, '', Buffer.from(`listing ${i}`), () => Buffer.alloc(2000));
      expect(m.stats().bytes).toBeLessThanOrEqual(10_000);
    }
    expect(m.stats().entries).toBeGreaterThan(0);
    expect(m.stats().entries).toBeLessThan(5);
    m.get(k, '', Buffer.from('huge'), () => Buffer.alloc(20_000));
    expect(m.get(k, '', Buffer.from('huge'), () => Buffer.alloc(1))).toHaveLength(1);
  });

  it('listings under minListingBytes are computed every time', () => {
    const m = new VerdictMemo({ maxEntries: 10, maxBytes: 1e6, minListingBytes: 100 });
    const k = new MemoKind<number>('test-small');
    let n = 0;
    m.get(k, '', bytes.subarray(0, 50), () => ++n);
    m.get(k, '', bytes.subarray(0, 50), () => ++n);
    expect(n).toBe(2);
    expect(m.stats()).toMatchObject({ entries: 0, hits: 0 });
  });
});
