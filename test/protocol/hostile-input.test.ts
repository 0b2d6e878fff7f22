/**
 * Arbitrary bytes and strings fed to every decoder and parser: they may only
 * ever throw a GithaError subclass (never a TypeError or RangeError), and
 * always return (the test would time out otherwise).
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { parseAdvertisement, parseHttpServiceHeader } from '../../src/protocol/advertisement.js';
import { parseCapabilityAdvertisement } from '../../src/protocol/capability-advertisement.js';
import { FetchResponseReader } from '../../src/protocol/fetch.js';
import { parseLsRefsResponse, parseV2Command } from '../../src/protocol/ls-refs.js';
import { decodeAll, encodePkts, type Pkt, PktLineDecoder } from '../../src/protocol/pkt-line.js';
import { ReceivePackRequestParser } from '../../src/protocol/receive-pack-request.js';
import { parseReportStatus, ReceivePackResponseReader } from '../../src/protocol/report-status.js';
import { canonicalRepositoryName } from '../../src/protocol/repository-name.js';
import { classifyHttpRequest, parseGitDaemonRequest, parseSshCommand } from '../../src/protocol/request.js';
import { parseSidebandPayload } from '../../src/protocol/sideband.js';
import { onlyGithaErrors, splitAt } from './helpers.js';

const RUNS = { numRuns: 500 };

/** Raw bytes, biased towards things that look like pkt-lines. */
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
  fc
    .array(
      fc.oneof(
        fc.constantFrom('0000', '0001', '0002', '0003', '0004', 'fff1', 'PACK', '\x01', '\x02', '\x03', '\0', '\n', ' '),
        fc.constantFrom('unpack ok', 'ok refs/heads/a', 'ng x y', 'option forced-update', 'ERR x', 'packfile', 'version 2'),
        fc.constantFrom('shallow ', 'push-cert', 'push-cert-end', 'command=fetch', `${'a'.repeat(40)} `, 'capabilities^{}'),
        fc.string({ maxLength: 20 }),
      ),
      { maxLength: 30 },
    )
    .map((parts) => Buffer.from(parts.join(''), 'latin1')),
);

/** Well-framed packets with hostile contents (so the parsers behind the framing get exercised). */
const pktItems = fc.array(
  fc.oneof(
    fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a)),
    fc
      .array(
        fc.constantFrom(
          'a'.repeat(40),
          '0'.repeat(40),
          'c'.repeat(64),
          ' ',
          '\0',
          '\n',
          'refs/heads/x',
          'HEAD',
          '^{}',
          'capabilities^{}',
          'shallow',
          'unpack',
          'ok',
          'ng',
          'option',
          'refname',
          'old-oid',
          'push-cert',
          'push-cert-end',
          '-----BEGIN ',
          'push-options',
          'object-format=sha256',
          'symref-target:',
          'peeled:',
          'unborn',
          'command=',
          'version 1',
          '\x01',
          '\x02',
          'ERR ',
        ),
        { maxLength: 8 },
      )
      .map((p) => p.join('')),
    fc.constantFrom<Pkt>({ type: 'flush' }, { type: 'delim' }, { type: 'response-end' }),
  ),
  { maxLength: 12 },
);
const framed = pktItems.map((items) => encodePkts(items));
const streams = fc.oneof(bytes, framed);
const cuts = fc.array(fc.nat({ max: 500 }), { maxLength: 8 });

function feed(buf: Buffer, cutPoints: number[], write: (chunk: Buffer) => void): void {
  for (const chunk of splitAt(buf, cutPoints)) write(chunk);
}

describe('hostile input never escapes as anything but a GithaError', () => {
  it('PktLineDecoder / decodeAll', () => {
    fc.assert(
      fc.property(streams, cuts, (buf, c) => {
        onlyGithaErrors(() => decodeAll(buf));
        onlyGithaErrors(() => {
          const d = new PktLineDecoder();
          feed(buf, c, (chunk) => {
            d.write(chunk);
            while (d.next() !== undefined);
          });
        });
        onlyGithaErrors(() => {
          const d = new PktLineDecoder();
          d.write(buf);
          while (d.readMessage(1000) !== undefined);
          d.rest();
        });
      }),
      RUNS,
    );
  });

  it('parsers over decoded packets', () => {
    fc.assert(
      fc.property(pktItems, (items) => {
        const pkts = decodeAll(encodePkts(items));
        onlyGithaErrors(() => parseAdvertisement(pkts));
        onlyGithaErrors(() => parseHttpServiceHeader(pkts));
        onlyGithaErrors(() => parseCapabilityAdvertisement(pkts));
        onlyGithaErrors(() => parseLsRefsResponse(pkts));
        onlyGithaErrors(() => parseV2Command(pkts));
        onlyGithaErrors(() => parseReportStatus(pkts));
        for (const p of pkts) if (p.type === 'data') onlyGithaErrors(() => parseSidebandPayload(p.payload));
      }),
      RUNS,
    );
  });

  it('FetchResponseReader', () => {
    fc.assert(
      fc.property(streams, cuts, (buf, c) => {
        onlyGithaErrors(() => {
          const r = new FetchResponseReader();
          feed(Buffer.concat([Buffer.from('000dpackfile\n'), buf]), c, (chunk) => {
            r.write(chunk);
            while (r.next() !== undefined);
          });
        });
        onlyGithaErrors(() => {
          const r = new FetchResponseReader();
          r.write(buf);
          while (r.next() !== undefined);
        });
      }),
      RUNS,
    );
  });

  it('ReceivePackRequestParser', () => {
    fc.assert(
      fc.property(streams, cuts, (buf, c) => {
        onlyGithaErrors(() => {
          const p = new ReceivePackRequestParser({ maxCommands: 5, maxPushOptions: 5 });
          let done = false;
          feed(buf, c, (chunk) => {
            if (!done) done = p.write(chunk) !== undefined;
          });
          if (done) p.rest();
        });
      }),
      RUNS,
    );
  });

  it('ReceivePackResponseReader', () => {
    fc.assert(
      fc.property(streams, cuts, fc.boolean(), (buf, c, sideband) => {
        onlyGithaErrors(() => {
          const r = new ReceivePackResponseReader(sideband, { maxReportLines: 5 });
          feed(buf, c, (chunk) => {
            r.write(chunk);
            while (r.next() !== undefined);
          });
        });
      }),
      RUNS,
    );
  });

  const pathish = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc
      .array(fc.constantFrom('/', '.', '..', '~', '%', '%2e', '%2f', '%ff', 'a', 'é', '.git', '-', '\\', '\0', ' ', "'", '\\\''), {
        maxLength: 12,
      })
      .map((p) => p.join('')),
  );

  it('canonicalRepositoryName', () => {
    fc.assert(
      fc.property(pathish, (s) => {
        onlyGithaErrors(() => canonicalRepositoryName(s));
      }),
      RUNS,
    );
  });

  it('parseSshCommand', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('git-upload-pack ', 'git receive-pack ', 'git-upload-archive ', 'sh -c ', ''),
        pathish,
        (prefix, s) => {
          onlyGithaErrors(() => parseSshCommand(prefix + s));
          onlyGithaErrors(() => parseSshCommand(`${prefix}'${s}'`));
        },
      ),
      RUNS,
    );
  });

  it('parseGitDaemonRequest', () => {
    fc.assert(
      fc.property(bytes, pathish, (buf, s) => {
        onlyGithaErrors(() => parseGitDaemonRequest(buf));
        onlyGithaErrors(() => parseGitDaemonRequest(Buffer.concat([Buffer.from(`git-upload-pack ${s}\0`), buf])));
      }),
      RUNS,
    );
  });

  it('classifyHttpRequest', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', ''),
        pathish,
        fc.constantFrom('', '/info/refs?service=git-upload-pack', '/git-receive-pack', '/HEAD', '/info/refs', '?x'),
        (method, s, suffix) => {
          onlyGithaErrors(() => classifyHttpRequest(method, `/${s}${suffix}`));
          onlyGithaErrors(() => classifyHttpRequest(method, s));
        },
      ),
      RUNS,
    );
  });
});
