import { describe, expect, it } from 'vitest';
import { ProtocolSyntaxError, RemoteFatalError } from '../../src/errors.js';
import {
  commandFeatures,
  encodeCapabilityAdvertisement,
  parseCapabilityAdvertisement,
  type V2Capabilities,
} from '../../src/protocol/capability-advertisement.js';
import { decodeAll, encodePkts, type Pkt } from '../../src/protocol/pkt-line.js';

const pkts = (...lines: Array<string | Pkt>): Pkt[] => decodeAll(encodePkts(lines));

describe('v2 capability advertisement', () => {
  it('parses keys with and without values', () => {
    const caps = parseCapabilityAdvertisement(
      pkts('version 2\n', 'agent=git/2.39.5\n', 'ls-refs=unborn\n', 'fetch=shallow wait-for-done\n', 'server-option\n'),
    );
    expect(caps.capabilities).toEqual(
      new Map<string, string | true>([
        ['agent', 'git/2.39.5'],
        ['ls-refs', 'unborn'],
        ['fetch', 'shallow wait-for-done'],
        ['server-option', true],
      ]),
    );
    expect(commandFeatures(caps, 'fetch')).toEqual(['shallow', 'wait-for-done']);
    expect(commandFeatures(caps, 'server-option')).toEqual([]);
    expect(commandFeatures(caps, 'object-info')).toBeUndefined();
  });

  it('keeps the first value of a repeated key, and accepts an empty value', () => {
    const caps = parseCapabilityAdvertisement(pkts('version 2', 'a=1', 'a=2', 'b=', { type: 'flush' }));
    expect(caps.capabilities).toEqual(new Map([['a', '1'], ['b', '']]));
  });

  it('round-trips', () => {
    const c: V2Capabilities = { version: 2, capabilities: new Map<string, string | true>([['fetch', 'filter'], ['x', true]]) };
    const bytes = encodeCapabilityAdvertisement(c);
    expect(bytes.toString()).toBe('000eversion 2\n0011fetch=filter\n0006x\n0000');
    expect(parseCapabilityAdvertisement(decodeAll(bytes))).toEqual(c);
  });

  it.each<[string, Pkt[]]>([
    ['no packets', []],
    ['no version line', pkts('agent=x\n')],
    ['version 1', pkts('version 1\n', 'agent=x\n')],
    ['an invalid key', pkts('version 2\n', 'bad key\n')],
    ['an empty key', pkts('version 2\n', '=x\n')],
    ['a delim', pkts('version 2\n', { type: 'delim' })],
    ['only a flush', pkts({ type: 'flush' })],
  ])('rejects %s', (_what, input) => {
    expect(() => parseCapabilityAdvertisement(input)).toThrow(ProtocolSyntaxError);
  });

  it('ERR is fatal', () => {
    expect(() => parseCapabilityAdvertisement(pkts('ERR no such repository'))).toThrow(RemoteFatalError);
  });

  it('refuses to encode values that would break a line', () => {
    const c: V2Capabilities = { version: 2, capabilities: new Map([['agent', 'a\nb']]) };
    expect(() => encodeCapabilityAdvertisement(c)).toThrow(ProtocolSyntaxError);
  });
});
