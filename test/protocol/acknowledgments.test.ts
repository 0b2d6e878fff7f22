import { describe, expect, it } from 'vitest';
import { ProtocolSyntaxError, RemoteFatalError } from '../../src/errors.js';
import { AcknowledgmentsReader, encodeHaveRequest } from '../../src/protocol/acknowledgments.js';
import { parseV2Command } from '../../src/protocol/ls-refs.js';
import { decodeAll, DELIM_PKT, encodePkt, encodePkts, FLUSH_PKT } from '../../src/protocol/pkt-line.js';
import { encodeSideband } from '../../src/protocol/sideband.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

function read(bytes: Buffer, step = bytes.length): ReturnType<AcknowledgmentsReader['result']> {
  const r = new AcknowledgmentsReader();
  for (let i = 0; i < bytes.length; i += step) {
    r.write(bytes.subarray(i, i + step));
    const got = r.result();
    if (got) return got;
  }
  return r.result();
}

describe('encodeHaveRequest', () => {
  it('wants one tip, has each object, and never says done', () => {
    const r = parseV2Command(decodeAll(encodeHaveRequest(A, [B, C], { agent: 'githa/1' })));
    expect(r.command).toBe('fetch');
    expect(r.args.map((a) => a.toString('latin1').trim())).toEqual(['no-progress', `want ${A}`, `have ${B}`, `have ${C}`]);
  });
});

describe('AcknowledgmentsReader', () => {
  it('collects the ACKed ids of an answer that ends with a flush', () => {
    const answer = Buffer.concat([encodePkts(['acknowledgments\n', `ACK ${B}\n`, `ACK ${C.toUpperCase()}\n`]), FLUSH_PKT]);
    for (const step of [1, 3, answer.length]) expect(read(answer, step)).toEqual({ acked: new Set([B, C]), ready: false });
  });

  it('acks nothing on NAK', () => {
    expect(read(Buffer.concat([encodePkts(['acknowledgments\n', 'NAK\n']), FLUSH_PKT]))).toEqual({ acked: new Set(), ready: false });
  });

  it('stops at ready, before the packfile that follows', () => {
    const pack = Buffer.concat([encodePkt('packfile\n'), encodeSideband(1, Buffer.from('PACK'))]);
    const answer = Buffer.concat([encodePkts(['acknowledgments\n', `ACK ${B}\n`, 'ready\n']), DELIM_PKT, pack]);
    const r = new AcknowledgmentsReader();
    r.write(answer.subarray(0, answer.length - pack.length)); // the pack has not arrived: the answer is complete already
    expect(r.result()).toEqual({ acked: new Set([B]), ready: true });
  });

  it('needs more bytes until the section ends', () => {
    const r = new AcknowledgmentsReader();
    r.write(encodePkts(['acknowledgments\n', `ACK ${B}\n`]));
    expect(r.result()).toBeUndefined();
    r.write(FLUSH_PKT);
    expect(r.result()?.acked).toEqual(new Set([B]));
  });

  it('treats an answer without an acknowledgments section as nothing acked', () => {
    expect(read(Buffer.concat([encodePkt('packfile\n'), FLUSH_PKT]))).toEqual({ acked: new Set(), ready: false });
  });

  it('refuses lines that are not acknowledgments, and relays ERR', () => {
    expect(() => read(Buffer.concat([encodePkts(['acknowledgments\n', 'ACK nope\n']), FLUSH_PKT]))).toThrow(ProtocolSyntaxError);
    expect(() => read(Buffer.concat([encodePkts(['acknowledgments\n', 'shallow x\n']), FLUSH_PKT]))).toThrow(ProtocolSyntaxError);
    expect(() => read(encodePkt('ERR upload-pack: not our ref\n'))).toThrow(RemoteFatalError);
  });
});
