import { describe, expect, it } from 'vitest';
import { ProtocolSyntaxError } from '../../src/errors.js';
import { advertisedHeadTarget, parseDiscovery } from '../../src/protocol/discovery.js';
import { decodeAll, encodePkts, FLUSH_PKT } from '../../src/protocol/pkt-line.js';
import { expected, fixture } from './helpers.js';

/** The capability advertisement of a v2 server: the start of the real v2-clone capture, up to its first flush. */
function v2Advertisement(): Buffer {
  const bytes = fixture('v2-clone', 'response.bin');
  return bytes.subarray(0, bytes.indexOf('0000') + 4);
}

describe('parseDiscovery', () => {
  it('a v2 server: the capability advertisement, without the "# service=" preamble (real git 2.39)', () => {
    const d = parseDiscovery(decodeAll(v2Advertisement()), 'git-upload-pack');
    expect(d.version).toBe(2);
    if (d.version === 2) expect(d.capabilities.capabilities.get('ls-refs')).toBe('unborn');
  });

  it('a server that ignored Git-Protocol: "# service=", flush, the v0 advertisement (real http-backend answer)', () => {
    const d = parseDiscovery(decodeAll(fixture('http-info-refs', 'response.bin')), 'git-receive-pack');
    expect(d.version).toBe(0);
    if (d.version !== 2) {
      expect(d.advertisement.refs.find((r) => r.name === 'refs/heads/feature')?.oid).toBe(expected.source['refs/heads/feature']);
      expect(d.advertisement.capabilities).toContain('report-status');
    }
  });

  it('an upload-pack advertisement names HEAD\'s target in symref=', () => {
    const adv = fixture('v0-clone', 'response.bin');
    const body = Buffer.concat([encodePkts(['# service=git-upload-pack\n']), FLUSH_PKT, adv.subarray(0, adv.indexOf('0000') + 4)]);
    const d = parseDiscovery(decodeAll(body), 'git-upload-pack');
    expect(d.version).toBe(0);
    if (d.version !== 2) {
      expect(d.advertisement.refs[0]).toEqual({ name: 'HEAD', oid: expected.source.HEAD });
      expect(advertisedHeadTarget(d.advertisement)).toBe('refs/heads/main');
    }
  });

  it('an empty repository: the preamble and an empty advertisement', () => {
    const d = parseDiscovery(decodeAll(Buffer.from('001e# service=git-upload-pack\n00000000')), 'git-upload-pack');
    expect(d.version === 0 && d.advertisement.refs).toEqual([]);
  });

  it('refuses a cut answer, another service, or data after the advertisement', () => {
    const info = fixture('http-info-refs', 'response.bin');
    expect(() => parseDiscovery(decodeAll(info.subarray(0, info.length - 4)), 'git-receive-pack')).toThrow(ProtocolSyntaxError);
    expect(() => parseDiscovery(decodeAll(info), 'git-upload-pack')).toThrow(/for git-receive-pack/);
    expect(() => parseDiscovery(decodeAll(Buffer.concat([info, encodePkts(['x\n']), FLUSH_PKT])), 'git-receive-pack')).toThrow(ProtocolSyntaxError);
    expect(() => parseDiscovery(decodeAll(Buffer.concat([v2Advertisement(), v2Advertisement()])), 'git-upload-pack')).toThrow(ProtocolSyntaxError);
    expect(() => parseDiscovery([], 'git-upload-pack')).toThrow(ProtocolSyntaxError);
  });
});
