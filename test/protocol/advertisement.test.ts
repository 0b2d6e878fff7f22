import { describe, expect, it } from 'vitest';
import { ProtocolSyntaxError, RemoteFatalError, UnknownServiceError } from '../../src/errors.js';
import {
  encodeAdvertisement,
  encodeHttpServiceHeader,
  parseAdvertisement,
  parseCapabilityList,
  parseHttpServiceHeader,
  type RefAdvertisement,
} from '../../src/protocol/advertisement.js';
import { decodeAll, encodePkts, type Pkt } from '../../src/protocol/pkt-line.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const Z = '0'.repeat(40);

const pkts = (...lines: Array<string | Pkt>): Pkt[] => decodeAll(encodePkts(lines));

describe('parseAdvertisement', () => {
  it('parses refs, peeled values, capabilities and shallow lines', () => {
    const adv = parseAdvertisement(
      pkts(
        `${A} HEAD\0multi_ack side-band-64k symref=HEAD:refs/heads/main agent=git/2.39.5\n`,
        `${A} refs/heads/main\n`,
        `${B} refs/tags/v1\n`,
        `${A} refs/tags/v1^{}\n`,
        `shallow ${B}\n`,
      ),
    );
    expect(adv).toEqual({
      version: 0,
      refs: [
        { oid: A, name: 'HEAD' },
        { oid: A, name: 'refs/heads/main' },
        { oid: B, name: 'refs/tags/v1' },
      ],
      peeled: new Map([['refs/tags/v1', A]]),
      capabilities: ['multi_ack', 'side-band-64k', 'symref=HEAD:refs/heads/main', 'agent=git/2.39.5'],
      shallow: [B],
    });
  });

  it('handles "version 1" and the empty repository pseudo-ref', () => {
    const adv = parseAdvertisement(pkts('version 1\n', `${Z} capabilities^{}\0report-status delete-refs\n`));
    expect(adv).toEqual({
      version: 1,
      refs: [],
      peeled: new Map(),
      capabilities: ['report-status', 'delete-refs'],
      shallow: [],
    });
  });

  it('tolerates a missing LF, a trailing flush, uppercase oids and SHA-256 ids', () => {
    const C = 'c'.repeat(64);
    expect(parseAdvertisement(pkts(`${A.toUpperCase()} refs/heads/x\0caps`, { type: 'flush' })).refs).toEqual([
      { oid: A, name: 'refs/heads/x' },
    ]);
    expect(parseAdvertisement(pkts(`${C} refs/heads/x\0object-format=sha256\n`)).refs[0]?.oid).toBe(C);
  });

  it('keeps receive-pack ".have" lines', () => {
    const adv = parseAdvertisement(pkts(`${A} refs/heads/main\0report-status\n`, `${B} .have\n`));
    expect(adv.refs.map((r) => r.name)).toEqual(['refs/heads/main', '.have']);
  });

  it('an empty list is an empty advertisement', () => {
    expect(parseAdvertisement([]).refs).toEqual([]);
  });

  it.each<[string, Pkt[]]>([
    ['a v2 advertisement', pkts('version 2\n', 'agent=git/2.39.5\n')],
    ['a bad oid', pkts(`${A.slice(1)}x refs/heads/main\0caps\n`)],
    ['a short oid', pkts(`abc refs/heads/main\0caps\n`)],
    ['mixed oid lengths', pkts(`${A} HEAD\0caps\n`, `${'c'.repeat(64)} refs/heads/x\n`)],
    ['no space', pkts(`${A}\0caps\n`)],
    ['an empty ref name', pkts(`${A} \0caps\n`)],
    ['a ref name with a space', pkts(`${A} refs/heads/a b\0caps\n`)],
    ['NUL after the first line', pkts(`${A} HEAD\0caps\n`, `${A} refs/heads/x\0more\n`)],
    ['a peeled line without its ref', pkts(`${A} HEAD\0caps\n`, `${A} refs/tags/v1^{}\n`)],
    ['capabilities^{} not first', pkts(`${A} HEAD\0caps\n`, `${Z} capabilities^{}\n`)],
    ['capabilities^{} with a real oid', pkts(`${A} capabilities^{}\0caps\n`)],
    ['a ref after capabilities^{}', pkts(`${Z} capabilities^{}\0caps\n`, `${A} refs/heads/x\n`)],
    ['a delim', pkts(`${A} HEAD\0caps\n`, { type: 'delim' })],
    ['a flush in the middle', pkts(`${A} HEAD\0caps\n`, { type: 'flush' }, `${A} refs/heads/x\n`)],
    ['invalid UTF-8 in a ref name', decodeAll(encodePkts([Buffer.from([...Buffer.from(`${A} refs/`), 0xff, 0])]))],
    ['a ref after shallow lines', pkts(`${A} HEAD\0caps\n`, `shallow ${A}\n`, `${A} refs/heads/x\n`)],
  ])('rejects %s', (_what, input) => {
    expect(() => parseAdvertisement(input)).toThrow(ProtocolSyntaxError);
  });

  it('turns an ERR packet into RemoteFatalError', () => {
    expect(() => parseAdvertisement(pkts('ERR access denied\n'))).toThrow(new RemoteFatalError('access denied'));
  });
});

describe('encodeAdvertisement', () => {
  it('round-trips', () => {
    const adv: RefAdvertisement = {
      version: 1,
      refs: [
        { oid: A, name: 'HEAD' },
        { oid: B, name: 'refs/tags/v1' },
      ],
      peeled: new Map([['refs/tags/v1', A]]),
      capabilities: ['ofs-delta', 'agent=githa'],
      shallow: [A],
    };
    const bytes = encodeAdvertisement(adv);
    expect(bytes.subarray(-4).toString()).toBe('0000');
    expect(parseAdvertisement(decodeAll(bytes))).toEqual(adv);
  });

  it('uses capabilities^{} for an empty repository, with the right zero id', () => {
    const empty = { version: 0, refs: [], peeled: new Map(), capabilities: ['a'], shallow: [] } as RefAdvertisement;
    expect(encodeAdvertisement(empty).toString()).toBe(`003f${Z} capabilities^{}\0a\n0000`);
    const sha256 = encodeAdvertisement({ ...empty, capabilities: ['object-format=sha256'] });
    expect(sha256.toString()).toContain(`${'0'.repeat(64)} capabilities^{}`);
    expect(parseAdvertisement(decodeAll(sha256)).capabilities).toEqual(['object-format=sha256']);
  });

  it('refuses ref names that would break the framing', () => {
    const bad = { version: 0, refs: [{ oid: A, name: 'x\ny' }], peeled: new Map(), capabilities: [], shallow: [] };
    expect(() => encodeAdvertisement(bad as RefAdvertisement)).toThrow(ProtocolSyntaxError);
  });
});

describe('smart HTTP service header', () => {
  it('encodes and parses', () => {
    const bytes = encodeHttpServiceHeader('git-upload-pack');
    expect(bytes.toString()).toBe('001e# service=git-upload-pack\n0000');
    expect(parseHttpServiceHeader(decodeAll(bytes))).toEqual({ service: 'git-upload-pack' });
    expect(parseHttpServiceHeader(pkts('# service=git-receive-pack'))).toEqual({ service: 'git-receive-pack' });
  });

  it('rejects anything else', () => {
    expect(() => parseHttpServiceHeader([])).toThrow(ProtocolSyntaxError);
    expect(() => parseHttpServiceHeader(pkts('# service=git-upload-pack\n', 'x'))).toThrow(ProtocolSyntaxError);
    expect(() => parseHttpServiceHeader(pkts('service=git-upload-pack\n'))).toThrow(ProtocolSyntaxError);
    expect(() => parseHttpServiceHeader(pkts('# service=git-shell\n'))).toThrow(UnknownServiceError);
    expect(() => encodeHttpServiceHeader('sh')).toThrow(UnknownServiceError);
    expect(() => parseHttpServiceHeader(pkts('ERR no\n'))).toThrow(RemoteFatalError);
  });
});

describe('parseCapabilityList', () => {
  it('splits on spaces and drops empty tokens (send-pack writes a leading space)', () => {
    expect(parseCapabilityList(' report-status  side-band-64k agent=git/2.39.5 ')).toEqual([
      'report-status',
      'side-band-64k',
      'agent=git/2.39.5',
    ]);
    expect(parseCapabilityList('')).toEqual([]);
  });
});
