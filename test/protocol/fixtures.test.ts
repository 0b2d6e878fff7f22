/**
 * Golden fixtures: raw bytes captured from git 2.39 by
 * test/fixtures/protocol/capture.sh (request.bin = what the client sent,
 * response.bin = what the server sent). Expected values: expected.json.
 */
import { describe, expect, it } from 'vitest';
import { parseAdvertisement, encodeAdvertisement, parseHttpServiceHeader } from '../../src/protocol/advertisement.js';
import {
  encodeCapabilityAdvertisement,
  parseCapabilityAdvertisement,
} from '../../src/protocol/capability-advertisement.js';
import { FetchResponseReader, type FetchResponseEvent } from '../../src/protocol/fetch.js';
import { encodeLsRefsRequest, parseLsRefsResponse, parseV2Command } from '../../src/protocol/ls-refs.js';
import { decodeAll, type Pkt, PktLineDecoder, pktText } from '../../src/protocol/pkt-line.js';
import {
  encodeReceivePackRequest,
  isZeroOid,
  type ReceivePackRequest,
  ReceivePackRequestParser,
} from '../../src/protocol/receive-pack-request.js';
import { ReceivePackResponseReader, type ReceivePackResponseEvent } from '../../src/protocol/report-status.js';
import { protocolVersionFrom } from '../../src/protocol/request.js';
import { parseSidebandPayload } from '../../src/protocol/sideband.js';
import { bytewise, checkPack, expected, fixture } from './helpers.js';

const src = expected.source;

/** Reads one flush-terminated message; fails the test if it is incomplete. */
function message(d: PktLineDecoder): Pkt[] {
  const m = d.readMessage();
  if (m === undefined) throw new Error('incomplete message');
  return m;
}

function decoderFor(buf: Buffer): PktLineDecoder {
  const d = new PktLineDecoder();
  d.write(buf);
  return d;
}

function texts(pkts: Pkt[]): string[] {
  return pkts.map((p) => (p.type === 'data' ? pktText(p.payload) : `<${p.type}>`));
}

const sourceRefs = [
  { oid: src['HEAD'], name: 'HEAD' },
  { oid: src['refs/heads/feature'], name: 'refs/heads/feature' },
  { oid: src['refs/heads/main'], name: 'refs/heads/main' },
  { oid: src['refs/tags/light'], name: 'refs/tags/light' },
  { oid: src['refs/tags/v1.0'], name: 'refs/tags/v1.0' },
];

describe('v0 clone (upload-pack)', () => {
  const response = fixture('v0-clone', 'response.bin');

  it('parses the ref advertisement and re-encodes it byte for byte', () => {
    const d = decoderFor(response);
    const before = d.bufferedLength;
    const adv = parseAdvertisement(message(d));
    expect(adv.version).toBe(0);
    expect(adv.refs).toEqual(sourceRefs);
    expect(adv.peeled).toEqual(new Map([['refs/tags/v1.0', src['refs/tags/v1.0^{}']]]));
    expect(adv.capabilities).toContain('side-band-64k');
    expect(adv.capabilities).toContain('symref=HEAD:refs/heads/main');
    expect(adv.capabilities).toContain('object-format=sha1');
    expect(adv.shallow).toEqual([]);
    const advBytes = response.subarray(0, before - d.bufferedLength);
    expect(encodeAdvertisement(adv).equals(advBytes)).toBe(true);
  });

  it('carries the pack on side-band 1 after NAK', () => {
    const d = decoderFor(response);
    message(d);
    const pkts = decodeAll(d.rest());
    expect(texts(pkts.slice(0, 1))).toEqual(['NAK']);
    expect(pkts[pkts.length - 1]).toEqual({ type: 'flush' });
    const pack: Buffer[] = [];
    let progress = '';
    for (const p of pkts.slice(1, -1)) {
      if (p.type !== 'data') throw new Error('unexpected special packet');
      const frame = parseSidebandPayload(p.payload);
      if (frame.band === 1) pack.push(frame.payload);
      else progress += frame.payload.toString('utf8');
    }
    expect(checkPack(Buffer.concat(pack)).objects).toBe(7);
    expect(progress).toContain('Total 7');
  });

  it('request: wants with capabilities on the first, flush, done', () => {
    const lines = texts(decodeAll(fixture('v0-clone', 'request.bin')));
    expect(lines[0]).toMatch(new RegExp(`^want ${src['HEAD']} .*side-band-64k`));
    expect(lines.slice(-2)).toEqual(['<flush>', 'done']);
    expect(lines.filter((l) => l.startsWith('want '))).toHaveLength(5);
    expect(fixture('v0-clone', 'git-protocol.txt').toString()).toBe('');
  });
});

describe('v1 ls-remote', () => {
  it('parses "version 1" and re-encodes byte for byte', () => {
    const response = fixture('v1-ls-remote', 'response.bin');
    const adv = parseAdvertisement(decodeAll(response));
    expect(adv.version).toBe(1);
    expect(adv.refs).toEqual(sourceRefs);
    expect(encodeAdvertisement(adv).equals(response)).toBe(true);
    expect(protocolVersionFrom(fixture('v1-ls-remote', 'git-protocol.txt').toString())).toBe(1);
    // ls-remote ends the conversation with a lone flush.
    expect(decodeAll(fixture('v1-ls-remote', 'request.bin'))).toEqual([{ type: 'flush' }]);
  });
});

describe('v2 clone', () => {
  const response = fixture('v2-clone', 'response.bin');
  const request = fixture('v2-clone', 'request.bin');

  it('is requested through GIT_PROTOCOL', () => {
    expect(protocolVersionFrom(fixture('v2-clone', 'git-protocol.txt').toString())).toBe(2);
  });

  it('capability advertisement, ls-refs response and fetch response', () => {
    const d = decoderFor(response);
    const before = d.bufferedLength;
    const caps = parseCapabilityAdvertisement(message(d));
    expect(caps.capabilities.get('agent')).toBe(`git/${expected.gitVersion}`);
    expect(caps.capabilities.get('ls-refs')).toBe('unborn');
    expect(caps.capabilities.get('fetch')).toBe('shallow wait-for-done');
    expect(caps.capabilities.get('server-option')).toBe(true);
    expect(caps.capabilities.get('object-format')).toBe('sha1');
    expect(encodeCapabilityAdvertisement(caps).equals(response.subarray(0, before - d.bufferedLength))).toBe(true);

    expect(parseLsRefsResponse(message(d))).toEqual([
      { oid: src['HEAD'], name: 'HEAD', symrefTarget: 'refs/heads/main' },
      { oid: src['refs/heads/feature'], name: 'refs/heads/feature' },
      { oid: src['refs/heads/main'], name: 'refs/heads/main' },
      { oid: src['refs/tags/light'], name: 'refs/tags/light' },
      { oid: src['refs/tags/v1.0'], name: 'refs/tags/v1.0', peeled: src['refs/tags/v1.0^{}'] },
    ]);

    const reader = new FetchResponseReader();
    const events: FetchResponseEvent[] = [];
    for (const chunk of bytewise(d.rest())) {
      reader.write(chunk);
      for (let e = reader.next(); e !== undefined; e = reader.next()) events.push(e);
    }
    expect(events[0]).toEqual({ type: 'section', name: 'packfile' });
    expect(events[events.length - 1]).toEqual({ type: 'end' });
    const pack = Buffer.concat(events.flatMap((e) => (e.type === 'pack' ? [e.data] : [])));
    expect(pack.subarray(0, 4).toString()).toBe('PACK');
    expect(checkPack(pack).objects).toBe(7);
    const progress = Buffer.concat(events.flatMap((e) => (e.type === 'progress' ? [e.data] : []))).toString();
    expect(progress).toContain('Enumerating objects: 7, done.');
    expect(reader.ended).toBe(true);
    expect(reader.rest().length).toBe(0);
  });

  it('requests: ls-refs, then fetch (then git just closes the pipe)', () => {
    const d = decoderFor(request);
    const lsRefs = parseV2Command(message(d));
    expect(lsRefs.command).toBe('ls-refs');
    expect(lsRefs.capabilities).toEqual(
      new Map([
        ['agent', `git/${expected.gitVersion}`],
        ['object-format', 'sha1'],
      ]),
    );
    expect(lsRefs.args.map(pktText)).toEqual([
      'peel',
      'symrefs',
      'unborn',
      'ref-prefix HEAD',
      'ref-prefix refs/heads/',
      'ref-prefix refs/tags/',
    ]);
    // Our encoder produces a request that parses the same way.
    const ours = parseV2Command(
      decodeAll(
        encodeLsRefsRequest({
          peel: true,
          symrefs: true,
          unborn: true,
          refPrefixes: ['HEAD', 'refs/heads/', 'refs/tags/'],
          agent: `git/${expected.gitVersion}`,
          objectFormat: 'sha1',
        }),
      ),
    );
    expect(ours.capabilities).toEqual(lsRefs.capabilities);
    expect(new Set(ours.args.map(pktText))).toEqual(new Set(lsRefs.args.map(pktText)));

    const fetch = parseV2Command(message(d));
    expect(fetch.command).toBe('fetch');
    const args = fetch.args.map(pktText);
    expect(args.slice(0, 2)).toEqual(['thin-pack', 'ofs-delta']);
    expect(args.filter((a) => a.startsWith('want '))).toHaveLength(5);
    expect(args[args.length - 1]).toBe('done');

    // No empty-request (lone flush) follows: the client simply disconnects.
    expect(d.bufferedLength).toBe(0);
  });
});

/** Feeds a push request in awkward pieces and returns the request and the rest. */
function parsePush(buf: Buffer): { request: ReceivePackRequest; rest: Buffer } {
  const parser = new ReceivePackRequestParser();
  let request: ReceivePackRequest | undefined;
  let i = 0;
  while (request === undefined) {
    if (i >= buf.length) throw new Error('request not complete');
    const size = 1 + (i % 7);
    request = parser.write(buf.subarray(i, i + size));
    i += size;
  }
  return { request, rest: Buffer.concat([parser.rest(), buf.subarray(i)]) };
}

function readPushResponse(buf: Buffer): ReceivePackResponseEvent[] {
  const d = decoderFor(buf);
  const adv = parseAdvertisement(message(d));
  expect(adv.capabilities).toEqual(expect.arrayContaining(['report-status', 'side-band-64k', 'push-options']));
  const reader = new ReceivePackResponseReader(true);
  const events: ReceivePackResponseEvent[] = [];
  for (const chunk of bytewise(d.rest())) {
    reader.write(chunk);
    for (let e = reader.next(); e !== undefined; e = reader.next()) events.push(e);
  }
  return events;
}

describe('push', () => {
  it('command list with capabilities, then the pack', () => {
    const { request, rest } = parsePush(fixture('push', 'request.bin'));
    expect(request.commands).toEqual(
      Object.entries(expected.push).map(([ref, { old, new: nu }]) => ({ oldOid: old, newOid: nu, ref })),
    );
    expect(request.capabilities).toEqual(expect.arrayContaining(['report-status-v2', 'side-band-64k']));
    expect(request.pushOptions).toEqual([]);
    expect(request.packExpected).toBe(true);
    expect(rest.subarray(0, 4).toString()).toBe('PACK');
    expect(checkPack(rest).objects).toBeGreaterThan(0);
  });

  it('encodeReceivePackRequest output parses back to the same request', () => {
    const { request } = parsePush(fixture('push', 'request.bin'));
    const again = parsePush(
      Buffer.concat([encodeReceivePackRequest(request.commands, request.capabilities), Buffer.from('PACK')]),
    );
    expect(again.request).toEqual(request);
    expect(again.rest.toString()).toBe('PACK');
  });

  it('advertisement (no HEAD, no peeled lines) and side-band report', () => {
    const events = readPushResponse(fixture('push', 'response.bin'));
    expect(events).toEqual([
      {
        type: 'report',
        report: {
          unpackOk: true,
          refs: Object.keys(expected.push).map((ref) => ({ ref, ok: true })),
        },
      },
      { type: 'end' },
    ]);
  });
});

describe('delete-only push', () => {
  it('has no pack', () => {
    const { request, rest } = parsePush(fixture('push-delete', 'request.bin'));
    expect(request.commands.map((c) => c.ref)).toEqual(Object.keys(expected.pushDelete));
    expect(request.commands.every((c) => isZeroOid(c.newOid))).toBe(true);
    expect(request.packExpected).toBe(false);
    expect(rest.length).toBe(0);
    const events = readPushResponse(fixture('push-delete', 'response.bin'));
    expect(events[0]).toEqual({
      type: 'report',
      report: { unpackOk: true, refs: Object.keys(expected.pushDelete).map((ref) => ({ ref, ok: true })) },
    });
  });
});

describe('push with push options', () => {
  it('reads the option list before the pack', () => {
    const { request, rest } = parsePush(fixture('push-options', 'request.bin'));
    expect(request.capabilities).toContain('push-options');
    expect(request.pushOptions).toEqual(expected.pushOptions.options);
    expect(request.commands).toEqual([
      {
        oldOid: (expected.pushOptions['refs/heads/main'] as { old: string }).old,
        newOid: (expected.pushOptions['refs/heads/main'] as { new: string }).new,
        ref: 'refs/heads/main',
      },
    ]);
    expect(checkPack(rest).objects).toBe(3);
    const again = parsePush(
      Buffer.concat([encodeReceivePackRequest(request.commands, request.capabilities, request.pushOptions), rest]),
    );
    expect(again.request).toEqual(request);
    expect(again.rest.equals(rest)).toBe(true);
  });
});

describe('smart-HTTP info/refs', () => {
  it('"# service=" preamble, flush, advertisement', () => {
    const d = decoderFor(fixture('http-info-refs', 'response.bin'));
    expect(parseHttpServiceHeader(message(d))).toEqual({ service: 'git-receive-pack' });
    const adv = parseAdvertisement(message(d));
    expect(adv.refs.map((r) => r.name)).toEqual(['refs/heads/feature', 'refs/heads/main', 'refs/tags/light', 'refs/tags/v1.0']);
    expect(d.bufferedLength).toBe(0);
  });
});
