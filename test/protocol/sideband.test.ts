import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LimitExceededError, SidebandError } from '../../src/errors.js';
import { decodeAll, MAX_PKT_LEN } from '../../src/protocol/pkt-line.js';
import {
  type Band,
  encodeProgress,
  encodeSideband,
  parseSidebandPayload,
  SIDEBAND_64K_MAX_DATA,
  SIDEBAND_MAX_DATA,
} from '../../src/protocol/sideband.js';

function decodeBand(buf: Buffer): { bands: number[]; data: Buffer } {
  const frames = decodeAll(buf).map((p) => {
    if (p.type !== 'data') throw new Error('not data');
    return parseSidebandPayload(p.payload);
  });
  return { bands: frames.map((f) => f.band), data: Buffer.concat(frames.map((f) => f.payload)) };
}

describe('parseSidebandPayload', () => {
  it('splits band and data', () => {
    expect(parseSidebandPayload(Buffer.from('\x01PACK', 'latin1'))).toEqual({ band: 1, payload: Buffer.from('PACK') });
    expect(parseSidebandPayload(Buffer.from('\x02', 'latin1'))).toEqual({ band: 2, payload: Buffer.alloc(0) });
    expect(parseSidebandPayload(Buffer.from('\x03oops\n', 'latin1')).band).toBe(3);
  });

  it('rejects empty packets and bands 0, 4, 255', () => {
    expect(() => parseSidebandPayload(Buffer.alloc(0))).toThrow(SidebandError);
    for (const band of [0, 4, 255, 0x45]) {
      expect(() => parseSidebandPayload(Buffer.of(band, 1, 2))).toThrow(SidebandError);
    }
  });
});

describe('encodeSideband', () => {
  it('splits into packets of at most 65520 bytes with side-band-64k', () => {
    const data = Buffer.alloc(SIDEBAND_64K_MAX_DATA * 2 + 5, 9);
    const out = encodeSideband(1, data);
    const pkts = decodeAll(out);
    expect(pkts).toHaveLength(3);
    expect(out.subarray(0, 4).toString()).toBe('fff0');
    expect(decodeBand(out).data.equals(data)).toBe(true);
    expect(MAX_PKT_LEN).toBe(SIDEBAND_64K_MAX_DATA + 5);
  });

  it('respects the side-band (1000-byte) packet size', () => {
    const out = encodeSideband(2, Buffer.alloc(2000, 1), SIDEBAND_MAX_DATA);
    for (const p of decodeAll(out)) if (p.type === 'data') expect(p.payload.length + 4).toBeLessThanOrEqual(1000);
  });

  it('encodes empty data as a keepalive packet', () => {
    expect(encodeSideband(2, Buffer.alloc(0)).toString('latin1')).toBe('0005\x02');
  });

  it('rejects impossible packet sizes', () => {
    expect(() => encodeSideband(1, Buffer.from('x'), 0)).toThrow(LimitExceededError);
    expect(() => encodeSideband(1, Buffer.from('x'), 65516)).toThrow(LimitExceededError);
  });

  it('round-trips any data on any band', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Band>(1, 2, 3),
        fc.uint8Array({ minLength: 1, maxLength: 5000 }),
        fc.integer({ min: 1, max: 2000 }),
        (band, data, max) => {
          const { bands, data: got } = decodeBand(encodeSideband(band, Buffer.from(data), max));
          expect(got.equals(Buffer.from(data))).toBe(true);
          expect(new Set(bands)).toEqual(new Set([band]));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('encodeProgress', () => {
  it('is one band-2 pkt-line holding the text as it is', () => {
    const out = encodeProgress('githa: waiting for another push to team/app.git (3 s)\r');
    expect(out.toString('latin1')).toBe('003b\x02githa: waiting for another push to team/app.git (3 s)\r');
  });

  it('splits a long text into packets plain side-band accepts, every one on band 2', () => {
    const text = 'é'.repeat(SIDEBAND_MAX_DATA);
    const out = encodeProgress(text);
    const pkts = decodeAll(out);
    expect(pkts.length).toBe(2);
    for (const p of pkts) expect(p.type === 'data' && p.payload.length <= SIDEBAND_MAX_DATA + 1).toBe(true);
    const { bands, data } = decodeBand(out);
    expect(bands).toEqual([2, 2]);
    expect(data.toString('utf8')).toBe(text);
  });
});
