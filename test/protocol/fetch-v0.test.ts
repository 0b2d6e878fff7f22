import { describe, expect, it } from 'vitest';
import { ProtocolSyntaxError, RemoteFatalError } from '../../src/errors.js';
import { encodeV0FetchRequest, type V0FetchEvent, V0FetchResponseReader } from '../../src/protocol/fetch-v0.js';
import { decodeAll, encodePkts, FLUSH_PKT, pktText } from '../../src/protocol/pkt-line.js';
import { encodeSideband } from '../../src/protocol/sideband.js';
import { bytewise, expected, fixture } from './helpers.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

function readAll(chunks: Buffer[]): V0FetchEvent[] {
  const reader = new V0FetchResponseReader();
  const events: V0FetchEvent[] = [];
  for (const chunk of chunks) {
    reader.write(chunk);
    for (let e = reader.next(); e !== undefined; e = reader.next()) events.push(e);
  }
  return events;
}

describe('encodeV0FetchRequest', () => {
  it('wants with the chosen capabilities on the first, flush, haves, done', () => {
    const offered = ['multi_ack', 'side-band', 'side-band-64k', 'ofs-delta', 'no-progress', 'agent=git/2.39.5', 'object-format=sha1'];
    const pkts = decodeAll(encodeV0FetchRequest({ wants: [A, B], haves: [B], offered, agent: 'githa/1' }));
    expect(pkts.map((p) => (p.type === 'data' ? pktText(p.payload) : p.type))).toEqual([
      `want ${A} side-band-64k ofs-delta no-progress agent=githa/1 object-format=sha1`,
      `want ${B}`,
      'flush',
      `have ${B}`,
      'done',
    ]);
  });

  it('asks for no capability the server did not offer, and needs side-band and a want', () => {
    const pkts = decodeAll(encodeV0FetchRequest({ wants: [A], haves: [], offered: ['side-band'], agent: 'githa/1' }));
    expect(pkts[0]?.type === 'data' && pktText(pkts[0].payload)).toBe(`want ${A} side-band`);
    expect(() => encodeV0FetchRequest({ wants: [A], haves: [], offered: ['ofs-delta'] })).toThrow(/side-band/);
    expect(() => encodeV0FetchRequest({ wants: [], haves: [], offered: ['side-band-64k'] })).toThrow(ProtocolSyntaxError);
    expect(() => encodeV0FetchRequest({ wants: ['nope'], haves: [], offered: ['side-band-64k'] })).toThrow();
  });
});

describe('V0FetchResponseReader', () => {
  it('reads real upload-pack output (git 2.39, after the advertisement): NAK, progress, the pack, flush — in any chunking', () => {
    const capture = fixture('v0-clone', 'response.bin');
    const answer = capture.subarray(capture.indexOf('0000') + 4);
    for (const chunks of [[answer], bytewise(answer)]) {
      const events = readAll(chunks);
      expect(events[0]).toEqual({ type: 'ack', text: 'NAK' });
      expect(events.at(-1)).toEqual({ type: 'end' });
      const pack = Buffer.concat(events.flatMap((e) => (e.type === 'pack' ? [e.data] : [])));
      expect(pack.subarray(0, 4).toString('latin1')).toBe('PACK');
      expect(events.some((e) => e.type === 'progress')).toBe(true);
    }
    expect(expected.gitVersion).toBe('2.39.5');
  });

  it('ACK lines, then band 3 is the server\'s fatal error', () => {
    const body = Buffer.concat([encodePkts([`ACK ${A}\n`]), encodeSideband(3, Buffer.from('out of memory'))]);
    expect(() => readAll([body])).toThrow(RemoteFatalError);
    expect(readAll([encodePkts([`ACK ${A}\n`])])).toEqual([{ type: 'ack', text: `ACK ${A}` }]);
  });

  it('refuses an ERR packet, a stray line, a flush before the pack', () => {
    expect(() => readAll([encodePkts(['ERR upload-pack: not our ref\n'])])).toThrow(/not our ref/);
    expect(() => readAll([encodePkts(['hello\n'])])).toThrow(ProtocolSyntaxError);
    expect(() => readAll([Buffer.concat([encodePkts(['NAK\n']), FLUSH_PKT])])).toThrow(/before the pack/);
  });
});
