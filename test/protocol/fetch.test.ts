import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PktLineError, ProtocolSyntaxError, RemoteFatalError, SidebandError } from '../../src/errors.js';
import { encodeFetchRequest, type FetchResponseEvent, FetchResponseReader } from '../../src/protocol/fetch.js';
import { parseV2Command } from '../../src/protocol/ls-refs.js';
import { decodeAll, DELIM_PKT, encodePkt, encodePkts, FLUSH_PKT, pktText } from '../../src/protocol/pkt-line.js';
import { encodeSideband } from '../../src/protocol/sideband.js';
import { splitAt } from './helpers.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

function readAll(bytes: Buffer | Buffer[]): FetchResponseEvent[] {
  const reader = new FetchResponseReader();
  const events: FetchResponseEvent[] = [];
  for (const chunk of Array.isArray(bytes) ? bytes : [bytes]) {
    reader.write(chunk);
    for (let e = reader.next(); e !== undefined; e = reader.next()) events.push(e);
  }
  return events;
}

describe('encodeFetchRequest', () => {
  it('writes the arguments git understands', () => {
    const r = parseV2Command(
      decodeAll(
        encodeFetchRequest({
          wants: [A],
          haves: [B.toUpperCase()],
          done: true,
          ofsDelta: true,
          thinPack: true,
          noProgress: true,
          includeTag: true,
          agent: 'githa/1',
        }),
      ),
    );
    expect(r.command).toBe('fetch');
    expect(r.capabilities).toEqual(new Map([['agent', 'githa/1']]));
    expect(r.args.map(pktText)).toEqual([
      'thin-pack',
      'no-progress',
      'include-tag',
      'ofs-delta',
      `want ${A}`,
      `have ${B}`,
      'done',
    ]);
  });

  it('rejects invalid object ids', () => {
    expect(() => encodeFetchRequest({ wants: ['HEAD'], haves: [], done: true })).toThrow(ProtocolSyntaxError);
  });
});

describe('FetchResponseReader', () => {
  const pack = Buffer.concat([Buffer.from('PACK'), Buffer.alloc(100_000, 0xab)]);
  const full = Buffer.concat([
    encodePkts(['acknowledgments\n', `ACK ${A}\n`, 'ready\n']),
    DELIM_PKT,
    encodePkts(['shallow-info\n', `shallow ${B}\n`]),
    DELIM_PKT,
    encodePkt('packfile\n'),
    encodeSideband(2, Buffer.from('Counting objects\r')),
    encodeSideband(1, pack),
    FLUSH_PKT,
  ]);

  it('reads sections, lines, progress and pack data', () => {
    const events = readAll(full);
    expect(events.filter((e) => e.type !== 'pack')).toEqual([
      { type: 'section', name: 'acknowledgments' },
      { type: 'line', section: 'acknowledgments', text: `ACK ${A}` },
      { type: 'line', section: 'acknowledgments', text: 'ready' },
      { type: 'section', name: 'shallow-info' },
      { type: 'line', section: 'shallow-info', text: `shallow ${B}` },
      { type: 'section', name: 'packfile' },
      { type: 'progress', data: Buffer.from('Counting objects\r') },
      { type: 'end' },
    ]);
    const got = Buffer.concat(events.flatMap((e) => (e.type === 'pack' ? [e.data] : [])));
    expect(got.equals(pack)).toBe(true);
  });

  it('does not copy pack data that arrives in one chunk', () => {
    const events = readAll(full);
    const packEvent = events.find((e) => e.type === 'pack');
    expect(packEvent?.type === 'pack' && packEvent.data.buffer === full.buffer).toBe(true);
  });

  it('handles an acknowledgments-only response', () => {
    const events = readAll(Buffer.concat([encodePkts(['acknowledgments\n', 'NAK\n']), FLUSH_PKT]));
    expect(events).toEqual([
      { type: 'section', name: 'acknowledgments' },
      { type: 'line', section: 'acknowledgments', text: 'NAK' },
      { type: 'end' },
    ]);
  });

  it('gives the same events however the stream is split', () => {
    const reference = readAll(full);
    const flatten = (events: FetchResponseEvent[]) =>
      events.map((e) => (e.type === 'pack' || e.type === 'progress' ? { type: e.type } : e));
    fc.assert(
      fc.property(fc.array(fc.nat({ max: full.length }), { maxLength: 30 }), (cuts) => {
        const events = readAll(splitAt(full, cuts));
        expect(flatten(events.filter((e) => e.type !== 'pack' && e.type !== 'progress'))).toEqual(
          flatten(reference.filter((e) => e.type !== 'pack' && e.type !== 'progress')),
        );
        const packOf = (es: FetchResponseEvent[]) => Buffer.concat(es.flatMap((e) => (e.type === 'pack' ? [e.data] : [])));
        expect(packOf(events).equals(pack)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('stops at the final flush and keeps what follows', () => {
    const reader = new FetchResponseReader();
    reader.write(Buffer.concat([encodePkts(['packfile\n']), FLUSH_PKT, Buffer.from('0014command=ls-refs\n')]));
    expect(reader.next()).toEqual({ type: 'section', name: 'packfile' });
    expect(reader.next()).toEqual({ type: 'end' });
    expect(reader.next()).toBeUndefined();
    expect(reader.ended).toBe(true);
    expect(reader.rest().toString()).toBe('0014command=ls-refs\n');
  });

  it('band 3 and ERR packets are RemoteFatalError', () => {
    expect(() => readAll(Buffer.concat([encodePkt('packfile\n'), encodeSideband(3, Buffer.from('disk full\n'))]))).toThrow(
      new RemoteFatalError('disk full'),
    );
    expect(() => readAll(encodePkt('ERR not our ref\n'))).toThrow(new RemoteFatalError('not our ref'));
    expect(() => readAll(Buffer.concat([encodePkt('packfile\n'), encodePkt('ERR boom')]))).toThrow(RemoteFatalError);
  });

  it.each<[string, Buffer, new (...a: never[]) => Error]>([
    ['an empty response', FLUSH_PKT, ProtocolSyntaxError],
    ['an invalid section name', encodePkt('Pack File\n'), ProtocolSyntaxError],
    ['an empty section name', encodePkt(''), ProtocolSyntaxError],
    ['a flush right after a delim', Buffer.concat([encodePkt('acknowledgments\n'), DELIM_PKT, FLUSH_PKT]), ProtocolSyntaxError],
    ['a delim in the packfile section', Buffer.concat([encodePkt('packfile\n'), DELIM_PKT]), ProtocolSyntaxError],
    ['a response-end', Buffer.concat([encodePkt('packfile\n'), Buffer.from('0002')]), ProtocolSyntaxError],
    ['side-band 0', Buffer.concat([encodePkt('packfile\n'), encodePkt(Buffer.from([0, 1]))]), SidebandError],
    ['side-band 4', Buffer.concat([encodePkt('packfile\n'), encodePkt(Buffer.from([4, 1]))]), SidebandError],
    ['an empty side-band packet', Buffer.concat([encodePkt('packfile\n'), encodePkt('')]), SidebandError],
    ['a bad pkt-line', Buffer.from('packfile'), PktLineError],
  ])('rejects %s', (_what, input, error) => {
    expect(() => readAll(input)).toThrow(error);
  });

  it('waits on a truncated response', () => {
    const truncated = full.subarray(0, full.length - 100);
    const events = readAll(truncated);
    expect(events.some((e) => e.type === 'end')).toBe(false);
  });
});

describe('FetchResponseReader after an error', () => {
  it('returns nothing more', () => {
    const reader = new FetchResponseReader();
    reader.write(Buffer.concat([encodePkt('ERR gone\n'), encodePkt('packfile\n'), FLUSH_PKT]));
    expect(() => reader.next()).toThrow(RemoteFatalError);
    expect(reader.next()).toBeUndefined();
    expect(reader.ended).toBe(true);
  });
});
