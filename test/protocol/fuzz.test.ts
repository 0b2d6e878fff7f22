/**
 * Bounded fuzzing of the wire parsers and request classifiers (issue 7, part
 * 5). In CI each property runs FUZZ_RUNS cases (default 300) or FUZZ_MS
 * milliseconds (default 1500), whichever ends first; `npm run fuzz` runs them
 * far longer. Complements test/protocol/hostile-input.test.ts (random bytes
 * and framed packets) with:
 *
 * - mutations of real git traffic (the golden captures in
 *   test/fixtures/protocol): flipped, inserted, deleted and duplicated bytes
 *   and truncations, which reach much deeper into each parser than random
 *   bytes do — only a GithaError may come out, and nothing may hang;
 * - invariants of canonical repository names, and that the three transports
 *   agree on them;
 * - round trips of report-status and v2 command requests.
 */
import fc from 'fast-check';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAdvertisement } from '../../src/protocol/advertisement.js';
import { parseCapabilityAdvertisement } from '../../src/protocol/capability-advertisement.js';
import { FetchResponseReader } from '../../src/protocol/fetch.js';
import { encodeLsRefsRequest, parseLsRefsResponse, parseV2Command } from '../../src/protocol/ls-refs.js';
import { decodeAll, PktLineDecoder } from '../../src/protocol/pkt-line.js';
import { ReceivePackRequestParser } from '../../src/protocol/receive-pack-request.js';
import { parseReportStatus, ReceivePackResponseReader, encodeReportStatus, type ReportStatus } from '../../src/protocol/report-status.js';
import { canonicalRepositoryName, MAX_REPOSITORY_NAME_BYTES, repositoryUrlPath } from '../../src/protocol/repository-name.js';
import { classifyHttpRequest, parseGitDaemonRequest, parseSshCommand } from '../../src/protocol/request.js';
import { parseSidebandPayload } from '../../src/protocol/sideband.js';
import { FIXTURES, fixture, onlyGithaErrors, splitAt } from './helpers.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const TIME_MS = Number(process.env.FUZZ_MS ?? 1_500);
/** Stop at RUNS or TIME_MS; stopping on time is no failure (fast-check's interruptAfterTimeLimit). */
const BOUNDED = { numRuns: RUNS, interruptAfterTimeLimit: TIME_MS, markInterruptAsFailure: false };
/** A property that hangs fails here instead of stalling CI. */
const TEST_TIMEOUT = TIME_MS + 30_000;

// ---- mutations of real traffic ------------------------------------------------

type Mutation = { kind: 'flip' | 'insert' | 'delete' | 'dup' | 'truncate' | 'hex'; at: number; n: number; byte: number };

const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip', 'insert', 'delete', 'dup', 'truncate', 'hex'),
  at: fc.nat(),
  n: fc.integer({ min: 1, max: 70_000 }),
  byte: fc.nat({ max: 255 }),
});

const HEX = Buffer.from('0123456789abcdefABCDEFgz', 'latin1');

function mutate(buf: Buffer, ms: Mutation[]): Buffer {
  let b = buf;
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.kind) {
      case 'flip':
        b = Buffer.from(b);
        b[at] = m.byte;
        break;
      case 'hex':
        // Lengths are where parsers are most fragile: rewrite one as a random hex-ish digit.
        b = Buffer.from(b);
        b[at] = HEX[m.byte % HEX.length]!;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.alloc(1 + (m.n % 8), m.byte), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + (m.n % 64))]);
        break;
      case 'dup':
        b = Buffer.concat([b.subarray(0, at + (m.n % 512)), b.subarray(at)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
    }
  }
  return b;
}

/** Every parser that could see these bytes, fed in chunks; each may only return or throw a GithaError. */
function parseEverything(buf: Buffer, cuts: number[]): void {
  onlyGithaErrors(() => {
    const pkts = decodeAll(buf);
    onlyGithaErrors(() => parseAdvertisement(pkts));
    onlyGithaErrors(() => parseCapabilityAdvertisement(pkts));
    onlyGithaErrors(() => parseLsRefsResponse(pkts));
    onlyGithaErrors(() => parseV2Command(pkts));
    onlyGithaErrors(() => parseReportStatus(pkts));
    for (const p of pkts) if (p.type === 'data') onlyGithaErrors(() => parseSidebandPayload(p.payload));
  });
  onlyGithaErrors(() => {
    const d = new PktLineDecoder();
    for (const chunk of splitAt(buf, cuts)) {
      d.write(chunk);
      while (d.readMessage(1 << 20) !== undefined);
    }
  });
  onlyGithaErrors(() => {
    const p = new ReceivePackRequestParser({ maxCommands: 1000 });
    for (const chunk of splitAt(buf, cuts)) if (p.write(chunk) !== undefined) break;
  });
  onlyGithaErrors(() => {
    const r = new FetchResponseReader();
    for (const chunk of splitAt(buf, cuts)) {
      r.write(chunk);
      while (r.next() !== undefined);
    }
  });
  for (const sideband of [true, false]) {
    onlyGithaErrors(() => {
      const r = new ReceivePackResponseReader(sideband, { maxReportLines: 1000 });
      for (const chunk of splitAt(buf, cuts)) {
        r.write(chunk);
        while (r.next() !== undefined);
      }
    });
  }
}

const captures = readdirSync(FIXTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => readdirSync(`${FIXTURES}${d.name}`).filter((f) => f.endsWith('.bin')).map((f) => [`${d.name}/${f}`, fixture(d.name, f)] as const));

describe('fuzz: mutated git traffic only ever raises GithaErrors', () => {
  it('has captures to mutate', () => {
    expect(captures.length).toBeGreaterThanOrEqual(8);
  });

  it.each(captures)('%s', (_name, capture) => {
    // Big captures (a pack) are cut to their first 64 KiB: the parsers' interesting part is the pkt-lines before it.
    const seed = capture.subarray(0, 64 * 1024);
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.array(fc.nat({ max: seed.length }), { maxLength: 6 }), (ms, cuts) => {
        parseEverything(mutate(seed, ms), cuts);
      }),
      BOUNDED,
    );
  }, TEST_TIMEOUT);
});

// ---- repository names ----------------------------------------------------------

const component = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_+@][A-Za-z0-9._+@-]{0,20}$/),
  fc.constantFrom('café', 'naïve', '東京', 'x.y', 'a-b', 'ü'),
);
/** Names githa must accept. */
const validName = fc
  .array(component, { minLength: 1, maxLength: 5 })
  .map((cs) => cs.map((c) => (c.endsWith('.git') ? `${c}x` : c)))
  .map((cs) => cs.join('/'))
  .filter((n) => Buffer.byteLength(n, 'utf8') + 4 <= MAX_REPOSITORY_NAME_BYTES);

/** Anything path-like, hostile or not. */
const anyName = fc.oneof(
  validName,
  fc.string({ maxLength: 80 }),
  fc.array(fc.constantFrom('/', '.', '..', '-', '~', '%', '%2e', 'a', '.git', '\\', '\0', ' ', 'é', 'e\u0301', '\u202e', '//'), { maxLength: 12 }).map((p) => p.join('')),
);

describe('fuzz: canonical repository names', () => {
  it('a canonical name is safe as a path below a backend root, and canonical again', () => {
    fc.assert(
      fc.property(anyName, (raw) => {
        let name: string;
        try {
          name = canonicalRepositoryName(raw);
        } catch (err) {
          onlyGithaErrors(() => {
            throw err;
          });
          return;
        }
        const parts = name.split('/');
        expect(parts.every((p) => p.length > 0 && p !== '..' && p !== '.' && !p.startsWith('-') && !p.startsWith('.'))).toBe(true);
        expect(name).toMatch(/\.git$/);
        expect(name.startsWith('/')).toBe(false);
        // eslint-disable-next-line no-control-regex -- a normalized repository name must never contain control characters
        expect(/[\0-\x1f\x7f\\%\s]/.test(name)).toBe(false);
        expect(Buffer.byteLength(name, 'utf8')).toBeLessThanOrEqual(MAX_REPOSITORY_NAME_BYTES);
        expect(name.normalize('NFC')).toBe(name);
        expect(canonicalRepositoryName(name)).toBe(name);
      }),
      BOUNDED,
    );
  }, TEST_TIMEOUT);

  it('HTTP, SSH and git:// name a valid repository the same way', () => {
    fc.assert(
      fc.property(validName, fc.boolean(), (raw, withSlash) => {
        const name = canonicalRepositoryName(raw);
        const spelled = withSlash ? `/${raw}` : raw;
        expect(classifyHttpRequest('GET', `/${repositoryUrlPath(raw)}/info/refs?service=git-upload-pack`).repo).toBe(name);
        expect(classifyHttpRequest('POST', `/${repositoryUrlPath(name)}/git-receive-pack`).repo).toBe(name);
        expect(parseSshCommand(`git-upload-pack '${spelled}'`).repo).toBe(name);
        expect(parseSshCommand(`git receive-pack '${name}'`).repo).toBe(name);
        expect(parseGitDaemonRequest(Buffer.from(`git-upload-pack /${raw}\0host=githa:9418\0\0version=2\0`, 'utf8')).repo).toBe(name);
      }),
      BOUNDED,
    );
  }, TEST_TIMEOUT);

  it('a percent-encoded or doubled name never classifies to a different repository', () => {
    fc.assert(
      fc.property(anyName, (raw) => {
        const target = `/${Array.from(Buffer.from(raw, 'utf8'), (b) => `%${b.toString(16).padStart(2, '0')}`).join('')}/info/refs?service=git-upload-pack`;
        let repo: string | undefined;
        onlyGithaErrors(() => {
          repo = classifyHttpRequest('GET', target).repo;
        });
        // Fully encoded, a name classifies to its own canonical name or is refused (an encoded "/" always is).
        if (repo !== undefined) expect(repo).toBe(canonicalRepositoryName(raw));
      }),
      BOUNDED,
    );
  }, TEST_TIMEOUT);
});

// ---- round trips -------------------------------------------------------------------

const refName = fc.stringMatching(/^refs\/(heads|tags)\/[A-Za-z0-9._/-]{1,30}$/).filter((r) => !r.endsWith('/') && !r.includes('//'));
const oid = fc.stringMatching(/^[0-9a-f]{40}$/);

describe('fuzz: round trips', () => {
  it('report-status: encode -> parse is the identity', () => {
    const status = fc.oneof(
      fc.record({ ref: refName, ok: fc.constant(true as const) }),
      fc.record({ ref: refName, ok: fc.constant(false as const), reason: fc.stringMatching(/^[a-z][ -~]{0,40}$/).map((s) => s.trimEnd()).filter((s) => s.length > 0) }),
      fc.record({ ref: refName, ok: fc.constant(true as const), options: fc.record({ refname: refName, oldOid: oid, newOid: oid }) }),
    );
    fc.assert(
      fc.property(fc.array(status, { maxLength: 20 }), fc.boolean(), (refs, unpackOk) => {
        const report: ReportStatus = { unpackOk, ...(unpackOk ? {} : { unpackError: 'index-pack failed' }), refs };
        const parsed = parseReportStatus(decodeAll(encodeReportStatus(report)));
        expect(parsed).toEqual(report);
      }),
      BOUNDED,
    );
  }, TEST_TIMEOUT);

  it('ls-refs request: encode -> parseV2Command keeps command, capabilities and arguments', () => {
    fc.assert(
      fc.property(
        fc.record({ symrefs: fc.boolean(), peel: fc.boolean(), refPrefixes: fc.array(fc.stringMatching(/^refs\/[a-z/]{0,20}$/), { maxLength: 5 }) }),
        (r) => {
          const parsed = parseV2Command(decodeAll(encodeLsRefsRequest({ ...r, agent: 'git/2.47' })));
          expect(parsed.command).toBe('ls-refs');
          expect(parsed.capabilities.get('agent')).toBe('git/2.47');
          const args = parsed.args.map((a) => a.toString('utf8').replace(/\n$/, ''));
          expect(args.filter((a) => a === 'symrefs').length).toBe(r.symrefs ? 1 : 0);
          expect(args.filter((a) => a === 'peel').length).toBe(r.peel ? 1 : 0);
          expect(args.filter((a) => a.startsWith('ref-prefix ')).map((a) => a.slice(11))).toEqual(r.refPrefixes);
        },
      ),
      BOUNDED,
    );
  }, TEST_TIMEOUT);
});
