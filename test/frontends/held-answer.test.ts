import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { EMPTY_CHECKSUM, refsChecksum } from '../../src/cluster/checksum.js';
import { discoveryListing, FailureWatch, firstPktComplete, firstPktError, HeldStream, lsRefsListing } from '../../src/frontends/http/held-answer.js';
import { decodeAll, encodePkts, FLUSH_PKT, pktText } from '../../src/protocol/pkt-line.js';

/*
 * What the HTTP front end reads of a held backend answer (docs/architecture.md
 * "Verified copies"): the checksum of a v0 advertisement or an ls-refs answer,
 * the lines a client's ref-prefixes select, an ERR in place of a listing.
 */

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const T = 'c'.repeat(40);
const Z = '0'.repeat(40);
const refs = [
  { name: 'refs/heads/main', oid: A },
  { name: 'refs/tags/v1', oid: T },
  { name: 'refs/heads/dev', oid: B },
];
const checksum = refsChecksum(refs);
const flush = { type: 'flush' } as const;

function advertisement(lines: string[]): Buffer {
  return encodePkts(['# service=git-upload-pack\n', flush, ...lines, flush]);
}

describe('discoveryListing', () => {
  it('checksums a v0 advertisement without HEAD, peeled lines or .have', () => {
    const body = advertisement([`${A} HEAD\0multi_ack symref=HEAD:refs/heads/main\n`, `${B} refs/heads/dev\n`, `${A} refs/heads/main\n`, `${T} refs/tags/v1\n`, `${A} refs/tags/v1^{}\n`]);
    expect(discoveryListing(body, 'git-upload-pack')).toEqual({ kind: 'copy', live: { kind: 'refs', checksum } });
    const push = encodePkts(['# service=git-receive-pack\n', flush, `${A} refs/heads/main\0report-status\n`, `${B} refs/heads/dev\n`, `${T} refs/tags/v1\n`, `${B} .have\n`, flush]);
    expect(discoveryListing(push, 'git-receive-pack')).toEqual({ kind: 'copy', live: { kind: 'refs', checksum } });
  });

  it("an empty repository's capabilities^{} line is an empty listing", () => {
    expect(discoveryListing(advertisement([`${Z} capabilities^{}\0multi_ack\n`]), 'git-upload-pack')).toEqual({ kind: 'copy', live: { kind: 'refs', checksum: EMPTY_CHECKSUM } });
  });

  it('a v2 capability advertisement has nothing to check', () => {
    expect(discoveryListing(encodePkts(['version 2\n', 'ls-refs=unborn\n', 'fetch\n', flush]), 'git-upload-pack')).toEqual({ kind: 'v2' });
  });

  it('an ERR naming a missing repository is a missing copy; another ERR a failed one; garbage is relayed unchecked', () => {
    expect(discoveryListing(encodePkts(['ERR no such repository: x\n']), 'git-upload-pack')).toMatchObject({ kind: 'copy', live: { kind: 'missing' } });
    expect(discoveryListing(encodePkts(['# service=git-upload-pack\n', flush, 'ERR access denied or repository not exported: /x\n', flush]), 'git-upload-pack')).toMatchObject({
      kind: 'copy',
      live: { kind: 'missing' },
    });
    expect(discoveryListing(encodePkts(['ERR out of memory\n']), 'git-upload-pack')).toMatchObject({ kind: 'copy', live: { kind: 'failed' } });
    expect(discoveryListing(Buffer.from('<html>hello</html>'), 'git-upload-pack')).toMatchObject({ kind: 'unchecked' });
  });
});

describe('lsRefsListing', () => {
  const lines = [`unborn HEAD symref-target:refs/heads/main\n`, `${B} refs/heads/dev\n`, `${A} refs/heads/main\n`, `${T} refs/tags/v1 peeled:${A}\n`];

  it('checks the whole listing and keeps only the selected lines, then the flush and what follows it byte for byte', () => {
    const body = Buffer.concat([encodePkts([...lines, flush]), Buffer.from('0002')]);
    const seen = lsRefsListing(body, ['refs/heads/']);
    expect(seen.kind).toBe('copy');
    if (seen.kind !== 'copy') return;
    expect(seen.live).toEqual({ kind: 'refs', checksum });
    expect(decodeAll(seen.out).map((p) => (p.type === 'data' ? pktText(p.payload) : p.type))).toEqual([`${B} refs/heads/dev`, `${A} refs/heads/main`, 'flush', 'response-end']);
    // No prefixes: every line, unchanged.
    const all = lsRefsListing(body, []);
    expect(all.kind === 'copy' && all.out.equals(body)).toBe(true);
  });

  it('an ERR is a failed or missing copy; an answer without its flush is unchecked', () => {
    expect(lsRefsListing(encodePkts(['ERR upload-pack: not our ref\n', flush]), [])).toMatchObject({ kind: 'copy', live: { kind: 'failed' } });
    expect(lsRefsListing(encodePkts([`${A} refs/heads/main\n`]), [])).toMatchObject({ kind: 'unchecked' });
    expect(lsRefsListing(FLUSH_PKT, [])).toMatchObject({ kind: 'copy', live: { kind: 'refs', checksum: EMPTY_CHECKSUM } });
  });
});

describe('the first packet of an upload-pack answer', () => {
  it('is complete once its length is held, and tells an ERR', () => {
    const err = encodePkts(['ERR upload-pack: not our ref ' + A + '\n']);
    expect(firstPktComplete(err.subarray(0, 10))).toBe(false);
    expect(firstPktComplete(err)).toBe(true);
    expect(firstPktError(err)).toBe(`upload-pack: not our ref ${A}`);
    expect(firstPktError(encodePkts(['NAK\n']))).toBeUndefined();
    expect(firstPktComplete(Buffer.from('PACK'))).toBe(true);
    expect(firstPktError(Buffer.from('PACK'))).toBeUndefined();
  });
});

describe('FailureWatch', () => {
  it('finds an ERR packet or a side-band 3 packet however the bytes are cut, and stops at bytes that are no pkt-line', () => {
    const ok = encodePkts(['acknowledgments\n', 'NAK\n', { type: 'delim' }, 'packfile\n', Buffer.concat([Buffer.from([1]), Buffer.alloc(3000, 7)]), Buffer.from('\x02progress\n'), flush]);
    const fatal = Buffer.concat([ok.subarray(0, ok.length - 4), encodePkts([Buffer.from('\x03fatal: pack-objects died\n')])]);
    const err = encodePkts(['ERR upload-pack: not our ref\n']);
    for (const [bytes, failure] of [
      [ok, undefined],
      [fatal, 'side-band 3 (fatal error)'],
      [err, 'ERR packet'],
    ] as const) {
      for (const step of [1, 3, 4096]) {
        const w = new FailureWatch();
        for (let i = 0; i < bytes.length; i += step) w.write(bytes.subarray(i, i + step));
        expect(w.failure).toBe(failure);
      }
    }
    const raw = new FailureWatch();
    raw.write(Buffer.concat([encodePkts(['NAK\n']), Buffer.from('PACK\0\0\0\x02'), encodePkts(['ERR not seen\n'])]));
    expect(raw.failure).toBeUndefined();
  });
});

describe('HeldStream', () => {
  it('holds up to a cap, then relays what it held and the rest in order', async () => {
    const held = new HeldStream(Readable.from([Buffer.from('ab'), Buffer.from('cd'), Buffer.from('ef')]));
    await held.fill(2);
    expect(held.ended).toBe(false);
    expect(held.bytes.toString()).toBe('abcd');
    const out: Buffer[] = [];
    for await (const c of held.all()) out.push(c);
    expect(Buffer.concat(out).toString()).toBe('abcdef');
  });
});
