import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LimitExceededError, ProtocolSyntaxError, RemoteFatalError, SidebandError } from '../../src/errors.js';
import { decodeAll, encodePkt, encodePkts, FLUSH_PKT, type Pkt } from '../../src/protocol/pkt-line.js';
import {
  encodeRejections,
  encodeReportStatus,
  encodeReportStatusSideband,
  parseReportStatus,
  ReceivePackResponseReader,
  type ReceivePackResponseEvent,
  type ReportStatus,
} from '../../src/protocol/report-status.js';
import { encodeSideband, SIDEBAND_MAX_DATA } from '../../src/protocol/sideband.js';
import { splitAt } from './helpers.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const pkts = (...lines: Array<string | Pkt>): Pkt[] => decodeAll(encodePkts(lines));

function readAll(sideband: boolean, chunks: Buffer[], opts?: { maxReportLines?: number }): ReceivePackResponseEvent[] {
  const reader = new ReceivePackResponseReader(sideband, opts);
  const events: ReceivePackResponseEvent[] = [];
  for (const chunk of chunks) {
    reader.write(chunk);
    for (let e = reader.next(); e !== undefined; e = reader.next()) events.push(e);
  }
  return events;
}

const report: ReportStatus = {
  unpackOk: true,
  refs: [
    { ref: 'refs/heads/main', ok: true },
    { ref: 'refs/heads/x', ok: false, reason: 'non-fast-forward' },
    {
      ref: 'refs/for/main',
      ok: true,
      options: { refname: 'refs/changes/1', oldOid: A, newOid: B, forcedUpdate: true },
    },
  ],
};

describe('parseReportStatus / encodeReportStatus', () => {
  it('parses the example of gitprotocol-pack', () => {
    expect(parseReportStatus(pkts('unpack ok\n', 'ok refs/heads/debug\n', 'ng refs/heads/master non-fast-forward\n'))).toEqual({
      unpackOk: true,
      refs: [
        { ref: 'refs/heads/debug', ok: true },
        { ref: 'refs/heads/master', ok: false, reason: 'non-fast-forward' },
      ],
    });
  });

  it('parses report-status-v2 option lines and unpack errors', () => {
    expect(
      parseReportStatus(
        pkts(
          'unpack index-pack abnormal exit\n',
          'ok refs/for/main\n',
          'option refname refs/changes/1\n',
          `option old-oid ${A}\n`,
          `option new-oid ${B}\n`,
          'option forced-update\n',
          'option future-thing x\n',
          'ng refs/heads/y\n',
          { type: 'flush' },
        ),
      ),
    ).toEqual({
      unpackOk: false,
      unpackError: 'index-pack abnormal exit',
      refs: [
        { ref: 'refs/for/main', ok: true, options: { refname: 'refs/changes/1', oldOid: A, newOid: B, forcedUpdate: true } },
        { ref: 'refs/heads/y', ok: false },
      ],
    });
  });

  it('round-trips', () => {
    const bytes = encodeReportStatus(report);
    expect(bytes.subarray(-4).toString()).toBe('0000');
    expect(parseReportStatus(decodeAll(bytes))).toEqual(report);
  });

  it.each<[string, Pkt[]]>([
    ['an empty report', []],
    ['no unpack line', pkts('ok refs/heads/x\n')],
    ['an unknown line', pkts('unpack ok\n', 'maybe refs/heads/x\n')],
    ['an option before any ref', pkts('unpack ok\n', 'option forced-update\n')],
    ['a bad option oid', pkts('unpack ok\n', 'ok refs/heads/x\n', 'option old-oid xyz\n')],
    ['an empty ref', pkts('unpack ok\n', 'ok \n')],
    ['a delim', pkts('unpack ok\n', { type: 'delim' })],
  ])('rejects %s', (_what, input) => {
    expect(() => parseReportStatus(input)).toThrow(ProtocolSyntaxError);
  });

  it('ERR is fatal', () => {
    expect(() => parseReportStatus(pkts('ERR denied\n'))).toThrow(RemoteFatalError);
  });
});

describe('encodeRejections', () => {
  it('rejects every ref with the reason', () => {
    expect(parseReportStatus(decodeAll(encodeRejections(['refs/heads/a', 'refs/heads/b'], 'repository is frozen')))).toEqual({
      unpackOk: true,
      refs: [
        { ref: 'refs/heads/a', ok: false, reason: 'repository is frozen' },
        { ref: 'refs/heads/b', ok: false, reason: 'repository is frozen' },
      ],
    });
    expect(encodeRejections(['refs/heads/a'], 'busy', false).toString()).toBe(
      `${encodePkt('unpack busy\n').toString()}${encodePkt('ng refs/heads/a busy\n').toString()}0000`,
    );
  });

  it('keeps reasons on one line', () => {
    const parsed = parseReportStatus(decodeAll(encodeRejections(['refs/heads/a'], 'line1\nline2\0')));
    expect(parsed.refs[0]?.reason).toBe('line1 line2 ');
  });
});

describe('ReceivePackResponseReader', () => {
  it('without side-band: the report, then end', () => {
    expect(readAll(false, [encodeReportStatus(report)])).toEqual([{ type: 'report', report }, { type: 'end' }]);
  });

  it('with side-band: progress, a report split across band-1 packets, end', () => {
    const inner = encodeReportStatus(report);
    const stream = Buffer.concat([
      encodeSideband(2, Buffer.from('Resolving deltas: 100%\n')),
      encodeSideband(1, inner.subarray(0, 7)),
      encodeSideband(2, Buffer.from('more\n')),
      encodeSideband(1, inner.subarray(7), 5),
      FLUSH_PKT,
    ]);
    expect(readAll(true, [stream])).toEqual([
      { type: 'progress', data: Buffer.from('Resolving deltas: 100%\n') },
      { type: 'progress', data: Buffer.from('more\n') },
      { type: 'report', report },
      { type: 'end' },
    ]);
  });

  it('with side-band but no report-status: just end', () => {
    expect(readAll(true, [Buffer.concat([encodeSideband(2, Buffer.from('x')), FLUSH_PKT])])).toEqual([
      { type: 'progress', data: Buffer.from('x') },
      { type: 'end' },
    ]);
  });

  it('encodeReportStatusSideband produces what the reader reads', () => {
    const bytes = encodeReportStatusSideband(report);
    expect(readAll(true, [bytes])).toEqual([{ type: 'report', report }, { type: 'end' }]);
  });

  it('band 3 and ERR become a fatal event, and nothing follows', () => {
    expect(readAll(true, [Buffer.concat([encodeSideband(3, Buffer.from('hook died\n')), FLUSH_PKT])])).toEqual([
      { type: 'fatal', message: 'hook died' },
    ]);
    expect(readAll(false, [encodePkt('ERR denied\n')])).toEqual([{ type: 'fatal', message: 'denied' }]);
    expect(readAll(true, [encodePkt('ERR denied\n')])).toEqual([{ type: 'fatal', message: 'denied' }]);
    expect(readAll(true, [encodeSideband(1, encodePkt('ERR nested\n'))])).toEqual([{ type: 'fatal', message: 'nested' }]);
  });

  it('gives the same events however the stream is split', () => {
    const stream = Buffer.concat([
      encodeSideband(2, Buffer.from('progress\r')),
      encodeSideband(1, encodeReportStatus(report), SIDEBAND_MAX_DATA),
      FLUSH_PKT,
    ]);
    fc.assert(
      fc.property(fc.array(fc.nat({ max: stream.length }), { maxLength: 30 }), (cuts) => {
        expect(readAll(true, splitAt(stream, cuts))).toEqual([
          { type: 'progress', data: Buffer.from('progress\r') },
          { type: 'report', report },
          { type: 'end' },
        ]);
      }),
      { numRuns: 300 },
    );
  });

  it.each<[string, boolean, Buffer, new (...a: never[]) => Error]>([
    ['a flush inside the report', true, Buffer.concat([encodeSideband(1, encodePkt('unpack ok\n')), FLUSH_PKT]), ProtocolSyntaxError],
    ['a partial inner packet at the end', true, Buffer.concat([encodeSideband(1, Buffer.from('00')), FLUSH_PKT]), ProtocolSyntaxError],
    [
      'data after the report',
      true,
      Buffer.concat([encodeSideband(1, Buffer.concat([encodeReportStatus(report), Buffer.from('0005x')]))]),
      ProtocolSyntaxError,
    ],
    [
      'a second report',
      true,
      Buffer.concat([encodeSideband(1, encodeReportStatus(report)), encodeSideband(1, encodeReportStatus(report))]),
      ProtocolSyntaxError,
    ],
    ['side-band 0', true, encodePkt(Buffer.from([0, 1])), SidebandError],
    ['an empty side-band packet', true, encodePkt(''), SidebandError],
    ['a delim', true, Buffer.from('0001'), ProtocolSyntaxError],
    ['an empty report', false, FLUSH_PKT, ProtocolSyntaxError],
    ['a malformed report', false, Buffer.concat([encodePkt('hello\n'), FLUSH_PKT]), ProtocolSyntaxError],
  ])('rejects %s', (_what, sideband, input, error) => {
    expect(() => readAll(sideband, [input])).toThrow(error);
  });

  it('limits the report size', () => {
    const big = encodeReportStatus({ unpackOk: true, refs: Array.from({ length: 20 }, (_, i) => ({ ref: `refs/heads/${i}`, ok: true })) });
    expect(() => readAll(false, [big], { maxReportLines: 10 })).toThrow(LimitExceededError);
  });
});
