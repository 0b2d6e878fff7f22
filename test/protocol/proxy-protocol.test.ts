/**
 * The PROXY protocol parser (src/protocol/proxy-protocol.ts) against headers
 * HAProxy 2.6 wrote (`send-proxy`, `send-proxy-v2`, captured byte for byte
 * from a listener behind it) and hostile input.
 */
import { describe, expect, it } from 'vitest';
import { parseProxyHeader, V1_MAX_LENGTH, V2_SIGNATURE } from '../../src/protocol/proxy-protocol.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
// haproxy: `server s 127.0.0.1:Q source 127.0.0.5 send-proxy-v2`, client 127.0.0.1:50001 to 127.0.0.1:41001, then "hello".
const HAPROXY_V2_TCP4 = hex('0d0a0d0a000d0a515549540a 21 11 000c 7f000001 7f000001 c351 a029 68656c6c6f');
// The same with `send-proxy`: client 127.0.0.1:50002 to 127.0.0.1:41002.
const HAPROXY_V1_TCP4 = Buffer.from('PROXY TCP4 127.0.0.1 127.0.0.1 50002 41002\r\nhello', 'latin1');
// `bind [::1]:41003`, client [::1]:50003.
const HAPROXY_V2_TCP6 = hex(
  '0d0a0d0a000d0a515549540a 21 21 0024 00000000000000000000000000000001 00000000000000000000000000000001 c353 a02b 68656c6c6f',
);
const v2 = (verCmd: number, fam: number, body: Buffer): Buffer => {
  const head = Buffer.alloc(4);
  head[0] = verCmd;
  head[1] = fam;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
};

describe('parseProxyHeader', () => {
  it('reads HAProxy send-proxy-v2 (TCP over IPv4) and leaves the client bytes after it', () => {
    const r = parseProxyHeader(HAPROXY_V2_TCP4);
    expect(r).toEqual({ kind: 'header', version: 2, length: 28, source: { address: '127.0.0.1', port: 50001 }, destination: { address: '127.0.0.1', port: 41001 } });
    expect(HAPROXY_V2_TCP4.subarray(28).toString()).toBe('hello');
  });

  it('reads HAProxy send-proxy (v1 TCP4)', () => {
    const r = parseProxyHeader(HAPROXY_V1_TCP4);
    expect(r).toEqual({ kind: 'header', version: 1, length: 44, source: { address: '127.0.0.1', port: 50002 }, destination: { address: '127.0.0.1', port: 41002 } });
    expect(HAPROXY_V1_TCP4.subarray(44).toString()).toBe('hello');
  });

  it('reads IPv6 addresses as node shows them (v2 and v1)', () => {
    expect(parseProxyHeader(HAPROXY_V2_TCP6)).toMatchObject({ kind: 'header', length: 52, source: { address: '::1', port: 50003 } });
    const v1 = parseProxyHeader(Buffer.from('PROXY TCP6 2001:DB8:0:0:0:0:0:7 ::1 1 65535\r\n'));
    expect(v1).toMatchObject({ kind: 'header', source: { address: '2001:db8::7', port: 1 }, destination: { address: '::1', port: 65535 } });
    const mapped = Buffer.alloc(36);
    mapped.writeUInt16BE(0xffff, 10);
    Buffer.from([192, 0, 2, 7]).copy(mapped, 12);
    expect(parseProxyHeader(v2(0x21, 0x21, mapped))).toMatchObject({ source: { address: '::ffff:192.0.2.7' } });
  });

  it('answers need-more for every proper prefix of a header, at any split', () => {
    for (const header of [HAPROXY_V2_TCP4.subarray(0, 28), HAPROXY_V1_TCP4.subarray(0, 44), HAPROXY_V2_TCP6.subarray(0, 52)]) {
      for (let n = 1; n < header.length; n++) expect(parseProxyHeader(header.subarray(0, n)), `${n} bytes`).toEqual({ kind: 'need-more' });
      expect(parseProxyHeader(header).kind).toBe('header');
    }
  });

  it('uses the socket’s own address for LOCAL, v1 UNKNOWN and UNSPEC, skipping the address block and TLVs', () => {
    expect(parseProxyHeader(v2(0x20, 0x00, Buffer.alloc(0)))).toEqual({ kind: 'header', version: 2, length: 16 });
    // LOCAL with an address block (health checks may carry one): its length is still skipped (2.2).
    expect(parseProxyHeader(v2(0x20, 0x11, Buffer.alloc(12, 1)))).toEqual({ kind: 'header', version: 2, length: 28 });
    expect(parseProxyHeader(v2(0x21, 0x00, Buffer.alloc(0)))).toEqual({ kind: 'header', version: 2, length: 16 });
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\nx'))).toEqual({ kind: 'header', version: 1, length: 15 });
    const worst = `PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`;
    expect(worst).toHaveLength(V1_MAX_LENGTH);
    expect(parseProxyHeader(Buffer.from(worst))).toEqual({ kind: 'header', version: 1, length: 107 });
    // TLVs after the addresses (here an ALPN, type 0x01) belong to the header and are ignored.
    const tlv = Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32]);
    const withTlv = v2(0x21, 0x11, Buffer.concat([HAPROXY_V2_TCP4.subarray(16, 28), tlv]));
    expect(parseProxyHeader(withTlv)).toMatchObject({ kind: 'header', length: 33, source: { address: '127.0.0.1', port: 50001 } });
  });

  it.each([
    ['no header at all (an HTTP request)', Buffer.from('GET / HTTP/1.1\r\n')],
    ['an SSH identification line', Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')],
    ['v1 without CRLF in 107 bytes', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`)],
    ['v1 ended by LF alone', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')],
    ['v1 lower case', Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 double space', Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 unknown protocol', Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 IPv6 under TCP4', Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n')],
    ['v1 heading zero in an address', Buffer.from('PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 heading zero in a port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n')],
    ['v1 port over 65535', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')],
    ['v1 IPv6 zone', Buffer.from('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n')],
    ['v1 host name', Buffer.from('PROXY TCP4 example.com 5.6.7.8 1 2\r\n')],
    ['v2 wrong signature', Buffer.concat([hex('0d0a0d0a000d0a515549540b'), Buffer.alloc(8)])],
    ['v2 version 1', v2(0x11, 0x11, Buffer.alloc(12))],
    ['v2 unknown command', v2(0x22, 0x11, Buffer.alloc(12))],
    ['v2 unknown family', v2(0x21, 0x41, Buffer.alloc(12))],
    ['v2 unknown protocol', v2(0x21, 0x13, Buffer.alloc(12))],
    ['v2 UDP', v2(0x21, 0x12, Buffer.alloc(12))],
    ['v2 IPv4 block too short', v2(0x21, 0x11, Buffer.alloc(11))],
    ['v2 IPv6 block too short', v2(0x21, 0x21, Buffer.alloc(12))],
  ])('refuses %s', (_name, bytes) => {
    expect(parseProxyHeader(bytes).kind).toBe('error');
  });

  it('refuses a wrong version as soon as its byte arrives, and a wrong signature at its first wrong byte', () => {
    expect(parseProxyHeader(Buffer.concat([V2_SIGNATURE, Buffer.from([0x11])])).kind).toBe('error');
    expect(parseProxyHeader(hex('0d0a0d0a01')).kind).toBe('error');
    expect(parseProxyHeader(Buffer.from('PRX')).kind).toBe('error');
  });

  it('waits for a v2 header of the largest length the field allows, and no further', () => {
    const big = v2(0x21, 0x11, Buffer.alloc(0xffff));
    expect(parseProxyHeader(big.subarray(0, big.length - 1))).toEqual({ kind: 'need-more' });
    expect(parseProxyHeader(big)).toMatchObject({ kind: 'header', length: 16 + 0xffff });
  });
});
