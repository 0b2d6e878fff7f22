import { describe, expect, it } from 'vitest';
import { ProtocolSyntaxError, RemoteFatalError } from '../../src/errors.js';
import { encodeLsRefsRequest, parseLsRefsResponse, parseV2Command } from '../../src/protocol/ls-refs.js';
import { decodeAll, encodePkts, type Pkt, pktText } from '../../src/protocol/pkt-line.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const pkts = (...lines: Array<string | Pkt>): Pkt[] => decodeAll(encodePkts(lines));

describe('encodeLsRefsRequest', () => {
  it('writes command, capabilities, delim, arguments, flush', () => {
    const bytes = encodeLsRefsRequest({
      symrefs: true,
      peel: true,
      unborn: true,
      refPrefixes: ['refs/heads/', 'HEAD'],
      agent: 'githa/1',
      objectFormat: 'sha1',
      serverOptions: ['x=1'],
    });
    expect(decodeAll(bytes)).toEqual(
      pkts(
        'command=ls-refs\n',
        'agent=githa/1\n',
        'object-format=sha1\n',
        'server-option=x=1\n',
        { type: 'delim' },
        'symrefs\n',
        'peel\n',
        'unborn\n',
        'ref-prefix refs/heads/\n',
        'ref-prefix HEAD\n',
        { type: 'flush' },
      ),
    );
    expect(encodeLsRefsRequest({}).toString()).toBe('0014command=ls-refs\n00010000');
  });

  it('refuses arguments with LF', () => {
    expect(() => encodeLsRefsRequest({ refPrefixes: ['a\nb'] })).toThrow(ProtocolSyntaxError);
  });
});

describe('parseLsRefsResponse', () => {
  it('parses oids, symrefs, peeled values and unborn HEAD', () => {
    expect(
      parseLsRefsResponse(
        pkts(
          'unborn HEAD symref-target:refs/heads/main\n',
          `${A} refs/heads/x\n`,
          `${B} refs/tags/v1 peeled:${A.toUpperCase()} future-attr:1\n`,
          { type: 'flush' },
        ),
      ),
    ).toEqual([
      { oid: '0'.repeat(40), name: 'HEAD', symrefTarget: 'refs/heads/main', unborn: true },
      { oid: A, name: 'refs/heads/x' },
      { oid: B, name: 'refs/tags/v1', peeled: A },
    ]);
    expect(parseLsRefsResponse([])).toEqual([]);
  });

  it('gives an unborn HEAD the zero id of the response object format', () => {
    const C = 'c'.repeat(64);
    expect(parseLsRefsResponse(pkts('unborn HEAD\n', `${C} refs/heads/x\n`))[0]?.oid).toBe('0'.repeat(64));
  });

  it.each<[string, Pkt[]]>([
    ['a line without a name', pkts(`${A}\n`)],
    ['a bad oid', pkts('xyz refs/heads/x\n')],
    ['a bad peeled oid', pkts(`${A} refs/tags/x peeled:zz\n`)],
    ['double spaces', pkts(`${A} refs/heads/x  symref-target:y\n`)],
    ['an empty symref target', pkts(`${A} HEAD symref-target:\n`)],
    ['a delim', pkts(`${A} HEAD\n`, { type: 'delim' })],
    ['invalid UTF-8', decodeAll(encodePkts([Buffer.from([0x61, 0x20, 0xc3])]))],
  ])('rejects %s', (_what, input) => {
    expect(() => parseLsRefsResponse(input)).toThrow(ProtocolSyntaxError);
  });

  it('ERR is fatal', () => {
    expect(() => parseLsRefsResponse(pkts('ERR upload-pack: not our ref\n'))).toThrow(RemoteFatalError);
  });
});

describe('parseV2Command', () => {
  it('parses command, capabilities and raw arguments', () => {
    const r = parseV2Command(
      pkts('command=fetch\n', 'agent=git/2\n', 'server-option=a\n', { type: 'delim' }, 'want x\n', 'done', { type: 'flush' }),
    );
    expect(r.command).toBe('fetch');
    expect(r.capabilities).toEqual(new Map([['agent', 'git/2'], ['server-option', 'a']]));
    expect(r.args).toEqual([Buffer.from('want x\n'), Buffer.from('done')]);
    expect(r.args.map(pktText)).toEqual(['want x', 'done']);
  });

  it('accepts a request without the delim when there are no arguments', () => {
    expect(parseV2Command(pkts('command=object-info\n', 'agent=x\n'))).toEqual({
      command: 'object-info',
      capabilities: new Map([['agent', 'x']]),
      args: [],
    });
  });

  it('the empty-request (a lone flush) has command ""', () => {
    expect(parseV2Command([]).command).toBe('');
    expect(parseV2Command(pkts({ type: 'flush' })).command).toBe('');
  });

  it.each<[string, Pkt[]]>([
    ['no command line', pkts('agent=x\n', { type: 'delim' })],
    ['a command with a value', pkts('command=fetch=1\n')],
    ['an invalid command name', pkts('command=../x\n')],
    ['an empty command name', pkts('command=\n')],
    ['two commands', pkts('command=fetch\n', 'command=ls-refs\n')],
    ['an invalid capability', pkts('command=fetch\n', 'bad cap\n')],
    ['two delims', pkts('command=fetch\n', { type: 'delim' }, 'a\n', { type: 'delim' })],
    ['a leading delim', pkts({ type: 'delim' }, 'command=fetch\n')],
    ['a flush in the middle', pkts('command=fetch\n', { type: 'flush' }, 'x\n')],
    ['a response-end', pkts('command=fetch\n', { type: 'response-end' })],
  ])('rejects %s', (_what, input) => {
    expect(() => parseV2Command(input)).toThrow(ProtocolSyntaxError);
  });
});
