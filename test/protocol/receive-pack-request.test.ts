import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LimitExceededError, PktLineError, ProtocolSyntaxError } from '../../src/errors.js';
import { encodePkt, encodePkts, FLUSH_PKT, type Pkt } from '../../src/protocol/pkt-line.js';
import {
  encodeReceivePackRequest,
  isZeroOid,
  type ReceivePackRequest,
  ReceivePackRequestParser,
  type ReceivePackRequestParserOptions,
  type RefCommand,
  ZERO_OID,
} from '../../src/protocol/receive-pack-request.js';
import { splitAt } from './helpers.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(64);
const PACK = Buffer.from('PACK\x00\x00\x00\x02', 'latin1');

function parse(buf: Buffer, opts?: ReceivePackRequestParserOptions) {
  const parser = new ReceivePackRequestParser(opts);
  const request = parser.write(buf);
  return { request, rest: request === undefined ? undefined : parser.rest(), parser };
}

const lines = (...items: Array<string | Buffer | Pkt>): Buffer => encodePkts(items);

describe('ReceivePackRequestParser', () => {
  it('parses a command list, then leaves the pack', () => {
    const { request, rest } = parse(
      Buffer.concat([
        lines(`${A} ${B} refs/heads/main\0 report-status side-band-64k agent=git/2.39.5\n`, `${ZERO_OID} ${A} refs/heads/new\n`, {
          type: 'flush',
        }),
        PACK,
      ]),
    );
    expect(request).toEqual({
      commands: [
        { oldOid: A, newOid: B, ref: 'refs/heads/main' },
        { oldOid: ZERO_OID, newOid: A, ref: 'refs/heads/new' },
      ],
      capabilities: ['report-status', 'side-band-64k', 'agent=git/2.39.5'],
      pushOptions: [],
      shallow: [],
      packExpected: true,
    });
    expect(rest).toEqual(PACK);
  });

  it('delete-only pushes expect no pack', () => {
    const { request, rest } = parse(lines(`${A} ${ZERO_OID} refs/heads/x\0delete-refs`, { type: 'flush' }));
    expect(request?.packExpected).toBe(false);
    expect(rest?.length).toBe(0);
  });

  it('an empty request (a lone flush) is valid', () => {
    const { request } = parse(FLUSH_PKT);
    expect(request).toEqual({ commands: [], capabilities: [], pushOptions: [], shallow: [], packExpected: false });
  });

  it('reads push options when requested', () => {
    const { request, rest } = parse(
      Buffer.concat([
        lines(`${A} ${B} refs/heads/main\0push-options\n`, { type: 'flush' }, 'ci.skip\n', 'note=a b', { type: 'flush' }),
        PACK,
      ]),
    );
    expect(request?.pushOptions).toEqual(['ci.skip', 'note=a b']);
    expect(rest).toEqual(PACK);
  });

  it('waits for the push-option list', () => {
    const parser = new ReceivePackRequestParser();
    expect(parser.write(lines(`${A} ${B} refs/heads/main\0push-options\n`, { type: 'flush' }))).toBeUndefined();
    expect(() => parser.rest()).toThrow(ProtocolSyntaxError);
    expect(parser.write(FLUSH_PKT)?.pushOptions).toEqual([]);
  });

  it('reads leading shallow lines and SHA-256 ids', () => {
    const { request } = parse(
      lines(`shallow ${C}\n`, `${C} ${C.replace(/c/g, 'd')} refs/heads/main\0object-format=sha256\n`, { type: 'flush' }),
    );
    expect(request?.shallow).toEqual([C]);
    expect(request?.commands[0]?.oldOid).toBe(C);
  });

  it('accepts a first command without capabilities, as receive-pack does', () => {
    const { request } = parse(lines(`${A} ${B} refs/heads/x\n`, { type: 'flush' }));
    expect(request?.commands).toHaveLength(1);
    expect(request?.capabilities).toEqual([]);
  });

  it('lowercases object ids', () => {
    const { request } = parse(lines(`${A.toUpperCase()} ${B} refs/heads/main\0\n`, { type: 'flush' }));
    expect(request?.commands[0]?.oldOid).toBe(A);
  });

  it('reads the commands of a push certificate', () => {
    const cert = [
      'certificate version 0.1\n',
      'pusher A U Thor <a@example.com> 1700000000 +0000\n',
      'pushee file:///srv/repo.git\n',
      'nonce 1700000000-abc\n',
      'push-option ci.skip\n',
      '\n',
      `${A} ${B} refs/heads/main\n`,
      '-----BEGIN PGP SIGNATURE-----\n',
      'abc\n',
      '-----END PGP SIGNATURE-----\n',
    ];
    const { request, rest } = parse(
      Buffer.concat([
        lines('push-cert\0report-status push-options\n', ...cert, 'push-cert-end\n', { type: 'flush' }, 'ci.skip\n', {
          type: 'flush',
        }),
        PACK,
      ]),
    );
    expect(request?.commands).toEqual([{ oldOid: A, newOid: B, ref: 'refs/heads/main' }]);
    expect(request?.capabilities).toEqual(['report-status', 'push-options']);
    expect(request?.pushOptions).toEqual(['ci.skip']);
    expect(request?.pushCertificate).toBe(cert.join(''));
    expect(rest).toEqual(PACK);
  });

  it('refuses writes after completion', () => {
    const parser = new ReceivePackRequestParser();
    parser.write(FLUSH_PKT);
    expect(() => parser.write(PACK)).toThrow(ProtocolSyntaxError);
  });

  it('limits the number of commands and push options', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => `${A} ${B} refs/heads/b${i}\n`);
    const three = lines(`${A} ${B} refs/heads/x\0\n`, ...many(2), { type: 'flush' });
    expect(parse(three, { maxCommands: 3 }).request?.commands).toHaveLength(3);
    expect(() => parse(three, { maxCommands: 2 })).toThrow(LimitExceededError);
    const options = lines(`${A} ${B} refs/heads/x\0push-options\n`, { type: 'flush' }, 'a', 'b', 'c', { type: 'flush' });
    expect(() => parse(options, { maxPushOptions: 2 })).toThrow(LimitExceededError);
    const shallow = lines(...Array.from({ length: 3 }, () => `shallow ${A}\n`));
    expect(() => parse(shallow, { maxCommands: 2 })).toThrow(LimitExceededError);
  });

  it('rejects an oversized command list while it streams in, without waiting for the flush', () => {
    const parser = new ReceivePackRequestParser({ maxCommands: 10 });
    parser.write(lines(`${A} ${B} refs/heads/x\0\n`));
    expect(() => {
      for (let i = 0; i < 20; i++) parser.write(lines(`${A} ${B} refs/heads/y${i}\n`));
    }).toThrow(LimitExceededError);
  });

  it.each<[string, Buffer]>([
    ['a short oid', lines(`${A.slice(2)} ${B} refs/heads/x\0\n`, { type: 'flush' })],
    ['a non-hex oid', lines(`${A.slice(1)}g ${B} refs/heads/x\0\n`, { type: 'flush' })],
    ['mixed oid lengths', lines(`${A} ${C} refs/heads/x\0\n`, { type: 'flush' })],
    ['ids that contradict object-format', lines(`${A} ${B} refs/heads/x\0object-format=sha256\n`, { type: 'flush' })],
    ['an unknown object-format', lines(`${A} ${B} refs/heads/x\0object-format=md5\n`, { type: 'flush' })],
    ['an empty ref name', lines(`${A} ${B} \0\n`, { type: 'flush' })],
    ['a missing ref name', lines(`${A} ${B}\0\n`, { type: 'flush' })],
    ['a ref name with a space', lines(`${A} ${B} refs/heads/a b\0\n`, { type: 'flush' })],
    ['a ref name with a control character', lines(`${A} ${B} refs/heads/a\x01\0\n`, { type: 'flush' })],
    ['NUL in a later command', lines(`${A} ${B} refs/heads/x\0\n`, `${A} ${B} refs/heads/y\0caps\n`, { type: 'flush' })],
    ['two NULs in the first command', lines(`${A} ${B} refs/heads/x\0a\0b\n`, { type: 'flush' })],
    ['invalid UTF-8 in a ref', lines(Buffer.from([...Buffer.from(`${A} ${B} refs/`), 0xfe, 0]), { type: 'flush' })],
    ['a delim', lines(`${A} ${B} refs/heads/x\0\n`, { type: 'delim' })],
    ['a response-end', lines({ type: 'response-end' })],
    ['shallow lines only', lines(`shallow ${A}\n`, { type: 'flush' })],
    ['a shallow line after a command', lines(`${A} ${B} refs/heads/x\0\n`, `shallow ${A}\n`, { type: 'flush' })],
    ['NUL in a push option', lines(`${A} ${B} refs/heads/x\0push-options\n`, { type: 'flush' }, 'a\0b', { type: 'flush' })],
    ['LF inside a push option', lines(`${A} ${B} refs/heads/x\0push-options\n`, { type: 'flush' }, 'a\nb\n', { type: 'flush' })],
    ['a flush inside a push certificate', lines('push-cert\0\n', 'certificate version 0.1\n', { type: 'flush' })],
    ['data after push-cert-end', lines('push-cert\0\n', 'push-cert-end\n', 'x\n')],
    ['a bad oid in a certificate', lines('push-cert\0\n', '\n', 'zz zz refs/heads/x\n')],
  ])('rejects %s', (_what, input) => {
    expect(() => parse(input)).toThrow(ProtocolSyntaxError);
  });

  it('limits the bytes of the command section', () => {
    const input = lines(`${A} ${B} refs/heads/${'x'.repeat(200)}\0\n`, `${A} ${B} refs/heads/${'y'.repeat(200)}\n`);
    expect(() => parse(input, { maxBytes: 300 })).toThrow(LimitExceededError);
  });

  it('keeps failing after an error', () => {
    const parser = new ReceivePackRequestParser();
    expect(() => parser.write(lines(`bad\0\n`))).toThrow(ProtocolSyntaxError);
    expect(() => parser.write(FLUSH_PKT)).toThrow(ProtocolSyntaxError);
  });

  it('rejects a malformed pkt-line before the pack', () => {
    expect(() => parse(Buffer.from('PACK'))).toThrow(PktLineError);
  });
});

describe('encodeReceivePackRequest', () => {
  it('writes capabilities on the first command only', () => {
    const commands: RefCommand[] = [
      { oldOid: A, newOid: B, ref: 'refs/heads/main' },
      { oldOid: B, newOid: ZERO_OID, ref: 'refs/heads/old' },
    ];
    expect(encodeReceivePackRequest(commands, ['report-status', 'side-band-64k']).toString('latin1')).toBe(
      `${encodePkt(`${A} ${B} refs/heads/main\0report-status side-band-64k\n`).toString('latin1')}` +
        `${encodePkt(`${B} ${ZERO_OID} refs/heads/old\n`).toString('latin1')}0000`,
    );
  });

  it('adds the push-options capability and list', () => {
    const out = encodeReceivePackRequest([{ oldOid: A, newOid: B, ref: 'refs/heads/x' }], ['report-status'], ['o=1']);
    expect(out.toString()).toContain('\0report-status push-options\n');
    expect(out.toString().endsWith(`0000${encodePkt('o=1\n').toString()}0000`)).toBe(true);
  });

  it('nothing to push: a lone flush', () => {
    expect(encodeReceivePackRequest([], ['report-status']).toString()).toBe('0000');
  });

  it('refuses invalid values', () => {
    expect(() => encodeReceivePackRequest([{ oldOid: 'x', newOid: B, ref: 'r' }], [])).toThrow(ProtocolSyntaxError);
    expect(() => encodeReceivePackRequest([{ oldOid: A, newOid: B, ref: 'a b' }], [])).toThrow(ProtocolSyntaxError);
    expect(() => encodeReceivePackRequest([{ oldOid: A, newOid: B, ref: 'r' }], [], ['a\nb'])).toThrow(
      ProtocolSyntaxError,
    );
  });

  it('isZeroOid', () => {
    expect(isZeroOid(ZERO_OID)).toBe(true);
    expect(isZeroOid('0'.repeat(64))).toBe(true);
    expect(isZeroOid('0'.repeat(39))).toBe(false);
    expect(isZeroOid(A)).toBe(false);
  });

  it('round-trips through the parser however the bytes are split', () => {
    const oid = fc.stringMatching(/^[0-9a-f]{40}$/);
    const ref = fc.stringMatching(/^refs\/heads\/[a-z0-9/._-]{1,30}$/);
    fc.assert(
      fc.property(
        fc.array(fc.record({ oldOid: oid, newOid: oid, ref }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.stringMatching(/^[a-z0-9= .]{0,20}$/), { maxLength: 4 }),
        fc.uint8Array({ maxLength: 50 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (commands, options, tail, cuts) => {
          const bytes = Buffer.concat([
            encodeReceivePackRequest(commands, ['report-status', 'push-options'], options),
            Buffer.from(tail),
          ]);
          const parser = new ReceivePackRequestParser();
          let request: ReceivePackRequest | undefined;
          const chunks = splitAt(bytes, cuts.map((c) => c % (bytes.length + 1)));
          let i = 0;
          for (; i < chunks.length && request === undefined; i++) request = parser.write(chunks[i] as Buffer);
          expect(request?.commands).toEqual(commands);
          expect(request?.pushOptions).toEqual(options);
          const rest = Buffer.concat([parser.rest(), ...chunks.slice(i)]);
          expect(rest.equals(Buffer.from(tail))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
