import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LimitExceededError, PktLineError, ProtocolSyntaxError } from '../../src/errors.js';
import {
  decodeAll,
  DELIM_PKT,
  encodePkt,
  encodePkts,
  FLUSH_PKT,
  MAX_PKT_LEN,
  MAX_PKT_PAYLOAD,
  type Pkt,
  PktFramingCheck,
  PktLineDecoder,
  pktText,
  pktTextStrict,
  RESPONSE_END_PKT,
} from '../../src/protocol/pkt-line.js';
import { bytewise, splitAt } from './helpers.js';

const b = (s: string) => Buffer.from(s, 'latin1');

function drain(decoder: PktLineDecoder): Pkt[] {
  const out: Pkt[] = [];
  for (let p = decoder.next(); p !== undefined; p = decoder.next()) out.push(p);
  return out;
}

describe('encodePkt', () => {
  it('encodes the examples of gitprotocol-common', () => {
    expect(encodePkt('a\n').toString('latin1')).toBe('0006a\n');
    expect(encodePkt('a').toString('latin1')).toBe('0005a');
    expect(encodePkt('foobar\n').toString('latin1')).toBe('000bfoobar\n');
    expect(encodePkt('').toString('latin1')).toBe('0004');
  });

  it('uses lowercase hex and counts UTF-8 bytes', () => {
    expect(encodePkt(Buffer.alloc(0xab - 4)).subarray(0, 4).toString()).toBe('00ab');
    expect(encodePkt('é').toString('latin1', 0, 4)).toBe('0006');
  });

  it('accepts the maximum payload and rejects one byte more', () => {
    expect(encodePkt(Buffer.alloc(MAX_PKT_PAYLOAD)).subarray(0, 4).toString()).toBe('fff0');
    expect(() => encodePkt(Buffer.alloc(MAX_PKT_PAYLOAD + 1))).toThrow(LimitExceededError);
    expect(MAX_PKT_LEN).toBe(65520);
  });

  it('special packets', () => {
    expect(FLUSH_PKT.toString()).toBe('0000');
    expect(DELIM_PKT.toString()).toBe('0001');
    expect(RESPONSE_END_PKT.toString()).toBe('0002');
    expect(encodePkts(['a', { type: 'delim' }, b('b'), { type: 'flush' }]).toString()).toBe('0005a00010005b0000');
  });
});

describe('pktText', () => {
  it('strips exactly one trailing LF', () => {
    expect(pktText(b('abc\n'))).toBe('abc');
    expect(pktText(b('abc\n\n'))).toBe('abc\n');
    expect(pktText(b('abc'))).toBe('abc');
    expect(pktText(b(''))).toBe('');
  });

  it('strict variant rejects invalid UTF-8', () => {
    expect(pktTextStrict(Buffer.from('hé\n'), 'x')).toBe('hé');
    expect(() => pktTextStrict(Buffer.from([0xff, 0x0a]), 'x')).toThrow(ProtocolSyntaxError);
  });
});

describe('PktLineDecoder', () => {
  it('decodes data, flush, delim and response-end packets', () => {
    expect(decodeAll(b('0006a\n000000010002000400050'))).toEqual([
      { type: 'data', payload: b('a\n') },
      { type: 'flush' },
      { type: 'delim' },
      { type: 'response-end' },
      { type: 'data', payload: b('') },
      { type: 'data', payload: b('0') },
    ]);
  });

  it('accepts uppercase hex like git', () => {
    expect(decodeAll(b('000Aabcdef'))).toEqual([{ type: 'data', payload: b('abcdef') }]);
  });

  it('rejects length 0003, bad hex and lengths over 65520', () => {
    for (const bad of ['0003', 'zzzz', '00g1', ' 004', '-004', 'fff1', 'ffff']) {
      expect(() => decodeAll(b(`${bad}${'x'.repeat(8)}`)), bad).toThrow(PktLineError);
    }
  });

  it('accepts exactly 65520', () => {
    const pkts = decodeAll(Buffer.concat([b('fff0'), Buffer.alloc(65516, 7)]));
    expect(pkts).toHaveLength(1);
  });

  it('waits for truncated input; decodeAll rejects it', () => {
    const d = new PktLineDecoder();
    d.write(b('00'));
    expect(d.next()).toBeUndefined();
    d.write(b('0aabc'));
    expect(d.next()).toBeUndefined();
    expect(d.bufferedLength).toBe(7);
    d.write(b('def'));
    expect(d.next()).toEqual({ type: 'data', payload: b('abcdef') });
    expect(() => decodeAll(b('0009abc'))).toThrow(PktLineError);
    expect(() => decodeAll(b('00'))).toThrow(PktLineError);
  });

  it('keeps throwing after a malformed header (no resynchronisation)', () => {
    const d = new PktLineDecoder();
    d.write(b('0003'));
    expect(() => d.next()).toThrow(PktLineError);
    expect(() => d.next()).toThrow(PktLineError);
  });

  it('returns payloads without copying when they lie in one chunk', () => {
    const chunk = b('0008abcd0000');
    const d = new PktLineDecoder();
    d.write(chunk);
    const pkt = d.next();
    expect(pkt?.type).toBe('data');
    if (pkt?.type === 'data') expect(pkt.payload.buffer).toBe(chunk.buffer);
  });

  it('rest() hands back the undecoded bytes and clears the decoder', () => {
    const d = new PktLineDecoder();
    d.write(b('0005a0000PA'));
    d.write(b('CK\x00\x01'));
    expect(d.next()?.type).toBe('data');
    expect(d.next()?.type).toBe('flush');
    // "PACK" is not a valid header: the caller must switch to raw mode instead.
    expect(() => d.next()).toThrow(PktLineError);
    expect(d.rest()).toEqual(b('PACK\x00\x01'));
    expect(d.bufferedLength).toBe(0);
    expect(d.next()).toBeUndefined();
  });

  it('readMessage() returns the packets up to a flush, or waits', () => {
    const d = new PktLineDecoder();
    d.write(b('0005a0005b'));
    expect(d.readMessage()).toBeUndefined();
    d.write(b('00000005c0000'));
    expect(d.readMessage()).toEqual([
      { type: 'data', payload: b('a') },
      { type: 'data', payload: b('b') },
    ]);
    expect(d.readMessage()).toEqual([{ type: 'data', payload: b('c') }]);
    expect(d.readMessage()).toBeUndefined();
  });

  it('readMessage() keeps partial messages for next() and rest()', () => {
    const d = new PktLineDecoder();
    d.write(b('0005a0001000'));
    expect(d.readMessage()).toBeUndefined();
    expect(d.next()).toEqual({ type: 'data', payload: b('a') });
    expect(d.rest()).toEqual(b('0001000'));
  });

  it('readMessage() enforces a byte limit', () => {
    const d = new PktLineDecoder();
    d.write(encodePkt(Buffer.alloc(100)));
    d.write(encodePkt(Buffer.alloc(100)));
    expect(() => d.readMessage(150)).toThrow(LimitExceededError);
  });

  it('handles many tiny chunks without losing bytes', () => {
    const stream = Buffer.concat([encodePkt('hello\n'), FLUSH_PKT, encodePkt(Buffer.alloc(3000, 1)), DELIM_PKT]);
    const d = new PktLineDecoder();
    const got: Pkt[] = [];
    for (const c of bytewise(stream)) {
      d.write(c);
      got.push(...drain(d));
    }
    expect(got).toEqual(decodeAll(stream));
  });
});

describe('pkt-line properties', () => {
  const pktArb: fc.Arbitrary<Pkt> = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((a) => ({ type: 'data', payload: Buffer.from(a) }) as Pkt),
    fc.uint8Array({ maxLength: 300 }).map((a) => ({ type: 'data', payload: Buffer.from(a) }) as Pkt),
    // Large payloads: random bytes would make generation slow; vary length and content cheaply.
    fc
      .record({ len: fc.integer({ min: 60000, max: MAX_PKT_PAYLOAD }), fill: fc.integer({ min: 0, max: 255 }) })
      .map(({ len, fill }) => {
        const payload = Buffer.alloc(len, fill);
        payload.writeUInt32BE(len, 0);
        return { type: 'data', payload } as Pkt;
      }),
    fc.constantFrom<Pkt>({ type: 'flush' }, { type: 'delim' }, { type: 'response-end' }),
  );

  it('encode -> decode is the identity, however the stream is split', () => {
    fc.assert(
      fc.property(
        fc.array(pktArb, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (pkts, cuts) => {
          const stream = encodePkts(pkts);
          const d = new PktLineDecoder();
          const got: Pkt[] = [];
          for (const chunk of splitAt(stream, cuts.map((c) => c % (stream.length + 1)))) {
            d.write(chunk);
            got.push(...drain(d));
          }
          expect(d.bufferedLength).toBe(0);
          expect(encodePkts(got).equals(stream)).toBe(true);
          expect(got.map((p) => p.type)).toEqual(pkts.map((p) => p.type));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('PktFramingCheck', () => {
  const check = (chunks: Buffer[]): void => {
    const c = new PktFramingCheck();
    for (const chunk of chunks) c.write(chunk);
    c.end();
  };

  it('accepts well-framed bodies however they are split, special packets included', () => {
    const body = Buffer.concat([encodePkt('command=fetch\n'), DELIM_PKT, encodePkt('want ' + 'a'.repeat(40) + '\n'), encodePkt(Buffer.alloc(MAX_PKT_PAYLOAD)), RESPONSE_END_PKT, FLUSH_PKT]);
    expect(() => check([body])).not.toThrow();
    expect(() => check(bytewise(body.subarray(0, 80)).concat([body.subarray(80)]))).not.toThrow();
    expect(() => check([body.subarray(0, 3), body.subarray(3, 18), body.subarray(18)])).not.toThrow();
    expect(() => check([])).not.toThrow();
  });

  it('refuses bad hex, 0003, lengths over 65520 and a body that stops inside a packet', () => {
    const valid = encodePkt('command=ls-refs\n');
    for (const broken of ['ffff', 'zzzz', '0003', 'fff1', '00g4']) {
      expect(() => check([valid, b(`${broken}xxxx`)]), broken).toThrow(PktLineError);
      // Split inside the header too: the header is judged once its 4 bytes are there.
      expect(() => check([...bytewise(Buffer.concat([valid, b(broken)]))]), broken).toThrow(PktLineError);
    }
    expect(() => check([valid, b('0032want')])).toThrow(/truncated/);
    expect(() => check([valid, b('00')])).toThrow(/truncated/);
  });

  it('agrees with decodeAll on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.array(fc.nat(64), { maxLength: 4 }), (bytes, cuts) => {
        const buf = Buffer.from(bytes);
        let decoded = true;
        try {
          decodeAll(buf);
        } catch {
          decoded = false;
        }
        let checked = true;
        try {
          check(splitAt(buf, cuts));
        } catch {
          checked = false;
        }
        expect(checked).toBe(decoded);
      }),
    );
  });
});
