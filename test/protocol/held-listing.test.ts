import { describe, expect, it } from 'vitest';
import { advertisedRefs, classifyFirstMessage, leadingErr, lsRefsListing, MessageHold, sameCapabilities } from '../../src/protocol/held-listing.js';
import { decodeAll, encodePkts, type Pkt } from '../../src/protocol/pkt-line.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const T = 'c'.repeat(40);
const ZERO = '0'.repeat(40);

/** The packets of a message without its flush (what MessageHold returns). */
const message = (items: Array<string | Pkt>): Pkt[] => decodeAll(encodePkts([...items, { type: 'flush' }])).slice(0, -1);

describe('MessageHold (gitprotocol-pack "Reference Discovery": the advertisement ends with a flush-pkt)', () => {
  const adv = encodePkts([`${A} HEAD\0multi_ack side-band-64k\n`, `${A} refs/heads/main\n`, { type: 'flush' }]);

  it('holds a message split anywhere, byte for byte, and hands back what follows its flush', () => {
    const after = encodePkts(['NAK\n']);
    const all = Buffer.concat([adv, after]);
    // Every cut before the flush's last byte: nothing until the second chunk.
    for (let cut = 1; cut < adv.length; cut++) {
      const hold = new MessageHold(1024);
      expect(hold.write(all.subarray(0, cut))).toBeUndefined();
      const got = hold.write(all.subarray(cut));
      if (got === undefined || got === 'over-cap') throw new Error(`no message at cut ${cut}`);
      expect(got.bytes.equals(adv)).toBe(true);
      expect(got.rest.equals(after)).toBe(true);
      expect(got.pkts).toHaveLength(2);
    }
  });

  it('answers at the chunk that completes the flush', () => {
    const hold = new MessageHold(1024);
    const got = hold.write(adv);
    expect(got && got !== 'over-cap' && got.bytes.equals(adv) && got.rest.length === 0).toBe(true);
  });

  it('stops holding past its cap, with or without the flush', () => {
    expect(new MessageHold(adv.length - 1).write(adv)).toBe('over-cap');
    expect(new MessageHold(10).write(adv.subarray(0, 20))).toBe('over-cap');
    const exact = new MessageHold(adv.length).write(adv);
    expect(exact).not.toBe('over-cap');
  });

  it('keeps what it got, and rejects bytes that are not pkt-lines', () => {
    const hold = new MessageHold(1024);
    hold.write(adv.subarray(0, 7));
    expect(hold.held().equals(adv.subarray(0, 7))).toBe(true);
    expect(() => new MessageHold(1024).write(Buffer.from('HTTP/1.1 200 OK\r\n'))).toThrow();
  });
});

describe('classifyFirstMessage', () => {
  it('tells a v2 capability advertisement (gitprotocol-v2 "Capability Advertisement") from a v0/v1 advertisement', () => {
    expect(classifyFirstMessage(message(['version 2\n', 'ls-refs=unborn\n', 'fetch=shallow\n']))).toEqual({ kind: 'v2' });
    expect(classifyFirstMessage(message(['version 1\n', `${A} refs/heads/main\0ofs-delta\n`]))).toEqual({ kind: 'v0' });
    expect(classifyFirstMessage(message([`${A} HEAD\0ofs-delta\n`]))).toEqual({ kind: 'v0' });
    expect(classifyFirstMessage([])).toEqual({ kind: 'v0' }); // an empty advertisement: a lone flush
  });

  it('takes an ERR packet for a refusal (git daemon: "access denied or repository not exported")', () => {
    expect(classifyFirstMessage(message(['ERR access denied or repository not exported: /r.git\n']))).toEqual({
      kind: 'refused',
      message: 'access denied or repository not exported: /r.git',
    });
  });
});

describe('leadingErr', () => {
  it('reads the ERR packet a server sent before closing without a flush', () => {
    expect(leadingErr(encodePkts(['ERR no such repository: /x.git\n']))).toBe('no such repository: /x.git');
    expect(leadingErr(encodePkts([`${A} HEAD\0x\n`]))).toBeUndefined();
    expect(leadingErr(Buffer.from('zz'))).toBeUndefined();
    expect(leadingErr(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('advertisedRefs', () => {
  it('lists refs without peeled lines nor the capabilities^{} of an empty repository', () => {
    const refs = advertisedRefs(message([`${A} HEAD\0ofs-delta\n`, `${A} refs/heads/main\n`, `${T} refs/tags/v1\n`, `${B} refs/tags/v1^{}\n`]));
    expect(refs).toEqual([
      { oid: A, name: 'HEAD' },
      { oid: A, name: 'refs/heads/main' },
      { oid: T, name: 'refs/tags/v1' },
    ]);
    expect(advertisedRefs(message([`${ZERO} capabilities^{}\0ofs-delta\n`]))).toEqual([]);
  });

  it('throws on an ERR packet inside an advertisement', () => {
    expect(() => advertisedRefs(message([`${A} HEAD\0x\n`, 'ERR upload-pack: oops\n']))).toThrow(/oops/);
  });
});

describe('lsRefsListing (gitprotocol-v2 "ls-refs": output = *ref flush-pkt)', () => {
  const answer = message([
    `${A} HEAD symref-target:refs/heads/main\n`,
    `${A} refs/heads/main\n`,
    `${B} refs/heads/side\n`,
    `${T} refs/tags/v1 peeled:${B}\n`,
    `${B} refs/notes/commits\n`,
  ]);

  it('lists every ref for the check and passes on only the lines the prefixes select, as sent', () => {
    const { refs, forward } = lsRefsListing(answer, ['HEAD', 'refs/heads/']);
    expect(refs.map((r) => r.name)).toEqual(['HEAD', 'refs/heads/main', 'refs/heads/side', 'refs/tags/v1', 'refs/notes/commits']);
    expect(refs[3]).toEqual({ name: 'refs/tags/v1', oid: T });
    expect(forward.equals(encodePkts([`${A} HEAD symref-target:refs/heads/main\n`, `${A} refs/heads/main\n`, `${B} refs/heads/side\n`, { type: 'flush' }]))).toBe(true);
  });

  it('passes everything on when the client sent no prefix', () => {
    expect(lsRefsListing(answer, []).forward.equals(encodePkts([...answer, { type: 'flush' }]))).toBe(true);
  });

  it('lists an unborn HEAD as HEAD (the checksum skips it)', () => {
    const { refs, forward } = lsRefsListing(message(['unborn HEAD symref-target:refs/heads/main\n']), ['HEAD']);
    expect(refs).toEqual([{ name: 'HEAD', oid: expect.any(String) as string }]);
    expect(decodeAll(forward)).toHaveLength(2);
  });

  it('throws on an ERR packet or a malformed line', () => {
    expect(() => lsRefsListing(message(['ERR upload-pack: not our ref\n']), [])).toThrow(/not our ref/);
    expect(() => lsRefsListing(message(['nonsense\n']), [])).toThrow();
  });
});

describe('sameCapabilities (gitprotocol-v2 "Capability Advertisement")', () => {
  const caps = (agent: string, ...more: string[]): Pkt[] => decodeAll(encodePkts(['version 2\n', `agent=${agent}\n`, 'ls-refs=unborn\n', 'fetch=shallow wait-for-done filter\n', 'object-format=sha1\n', ...more]));
  it('takes two hosts that differ only in their git release (agent=) as offering the same', () => {
    expect(sameCapabilities(caps('git/2.43.0'), caps('git/2.45.2'))).toBe(true);
  });
  it('tells apart any other difference', () => {
    expect(sameCapabilities(caps('git/2.43.0'), caps('git/2.43.0', 'object-info\n'))).toBe(false);
    expect(sameCapabilities(caps('git/2.43.0'), decodeAll(encodePkts(['version 2\n', 'agent=git/2.43.0\n', 'ls-refs\n', 'fetch=shallow wait-for-done filter\n', 'object-format=sha1\n'])))).toBe(false);
  });
});
