/**
 * The PROXY protocol, versions 1 and 2, receiver side (HAProxy's
 * doc/proxy-protocol.txt, "The PROXY protocol", Willy Tarreau; sections cited
 * below). A load balancer in front of githa (HAProxy `send-proxy` /
 * `send-proxy-v2`) writes one header before the client's first byte; it names
 * the client's address and port. Only connections from the addresses in
 * `listen.proxyProtocolFrom` are read this way (src/frontends/proxy-listener.ts;
 * docs/security.md "Client addresses behind a load balancer").
 *
 * Pure and incremental: `parseProxyHeader(bytes)` is given everything read so
 * far and answers `need-more` (a valid prefix of a header), `header` (its
 * length, and the client's address, or none: use the socket's own), or
 * `error` (never a header: the connection is closed). Strict: anything the
 * specification does not allow a sender to emit is an error, never guessed at.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** 2.1: "If the CRLF sequence is not found in the first 107 characters, the receiver should declare the line invalid." */
export const V1_MAX_LENGTH = 107;
/** 2.2: the twelve bytes every v2 header starts with ("\r\n\r\n\0\r\nQUIT\n"). */
export const V2_SIGNATURE: Buffer = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** 2.2: signature (12), version and command (1), family and protocol (1), length (2). */
export const V2_FIXED_LENGTH = 16;
/** 2.2: the length field is 16 bits, so no v2 header is longer than this. */
export const V2_MAX_LENGTH = V2_FIXED_LENGTH + 0xffff;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

export interface ProxiedAddress {
  address: string;
  port: number;
}

export type ProxyHeaderResult =
  | { kind: 'need-more' }
  /**
   * A complete header of `length` bytes (the bytes after it are the client's).
   * `source` absent: a v2 LOCAL command (a health check of the balancer
   * itself), v1 `UNKNOWN` or a v2 family without an IP address: the spec
   * (2.1, 2.2) says to use the connection's own addresses.
   */
  | { kind: 'header'; version: 1 | 2; length: number; source?: ProxiedAddress; destination?: ProxiedAddress }
  | { kind: 'error'; reason: string };

const NEED_MORE: ProxyHeaderResult = { kind: 'need-more' };

/** Parses the bytes a trusted peer sent so far; see the module comment. */
export function parseProxyHeader(bytes: Buffer): ProxyHeaderResult {
  if (bytes.length === 0) return NEED_MORE;
  // 2.2: a v2 header starts with \r (0x0D), a v1 line with 'P': the first byte decides.
  if (bytes[0] === V2_SIGNATURE[0]) return parseV2(bytes);
  if (bytes[0] === V1_PREFIX[0]) return parseV1(bytes);
  return { kind: 'error', reason: 'no PROXY protocol header (neither the v1 "PROXY " nor the v2 signature)' };
}

/** The first `n` bytes of `bytes` equal those of `expected` (as far as both go). */
function prefixMatches(bytes: Buffer, expected: Buffer): boolean {
  const n = Math.min(bytes.length, expected.length);
  return bytes.subarray(0, n).equals(expected.subarray(0, n));
}

/**
 * 2.1, the human-readable header: `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n`
 * with single spaces, or `PROXY UNKNOWN…\r\n` (whatever follows UNKNOWN is ignored).
 */
function parseV1(bytes: Buffer): ProxyHeaderResult {
  if (!prefixMatches(bytes, V1_PREFIX)) return { kind: 'error', reason: 'a v1 header must start with "PROXY "' };
  const window = bytes.subarray(0, V1_MAX_LENGTH);
  const lf = window.indexOf(0x0a);
  if (lf === -1) {
    return bytes.length >= V1_MAX_LENGTH ? { kind: 'error', reason: `v1 header longer than ${V1_MAX_LENGTH} bytes` } : NEED_MORE;
  }
  if (lf === 0 || window[lf - 1] !== 0x0d) return { kind: 'error', reason: 'v1 header line not ended by CRLF' };
  const length = lf + 1;
  const line = window.subarray(0, lf - 1).toString('latin1');
  const fields = line.split(' ');
  if (fields[1] === 'UNKNOWN') return { kind: 'header', version: 1, length };
  if (fields.length !== 6) return { kind: 'error', reason: 'v1 header: expected "PROXY TCP4|TCP6 src dst sport dport"' };
  const [, proto, src, dst, sport, dport] = fields as [string, string, string, string, string, string];
  const valid = proto === 'TCP4' ? isIPv4 : proto === 'TCP6' ? isIPv6 : undefined;
  if (!valid) return { kind: 'error', reason: 'v1 header: protocol must be TCP4, TCP6 or UNKNOWN' };
  // 2.1: canonical text only: node's isIPv4 refuses heading zeroes; an IPv6 zone (%eth0) is no address of the wire.
  if (!valid(src) || !valid(dst) || /[^0-9a-fA-F:.]/.test(src + dst)) return { kind: 'error', reason: `v1 header: address is not ${proto === 'TCP4' ? 'IPv4' : 'IPv6'}` };
  const sp = parsePort(sport);
  const dp = parsePort(dport);
  if (sp === undefined || dp === undefined) return { kind: 'error', reason: 'v1 header: port must be a decimal number 0-65535' };
  return {
    kind: 'header',
    version: 1,
    length,
    source: { address: proto === 'TCP6' ? canonicalIPv6(src) : src, port: sp },
    destination: { address: proto === 'TCP6' ? canonicalIPv6(dst) : dst, port: dp },
  };
}

/** 2.1: ports are decimal, 0-65535; no sign, no leading zero. */
function parsePort(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffff ? n : undefined;
}

/** 2.2, the binary header. */
function parseV2(bytes: Buffer): ProxyHeaderResult {
  if (!prefixMatches(bytes, V2_SIGNATURE)) return { kind: 'error', reason: 'wrong v2 signature' };
  if (bytes.length < V2_FIXED_LENGTH) {
    // The 13th byte can be judged on its own, before the rest arrives.
    if (bytes.length > 12 && bytes[12]! >> 4 !== 0x2) return { kind: 'error', reason: 'v2 header: version must be 2' };
    return NEED_MORE;
  }
  const versionCommand = bytes[12]!;
  // "The highest four bits contains the version. … Receivers must drop connections presenting unexpected values here."
  if (versionCommand >> 4 !== 0x2) return { kind: 'error', reason: 'v2 header: version must be 2' };
  const command = versionCommand & 0x0f;
  // 0x0 LOCAL, 0x1 PROXY; "other values are unassigned and must not be emitted by senders".
  if (command > 0x1) return { kind: 'error', reason: `v2 header: unknown command ${command}` };
  const family = bytes[13]! >> 4;
  const transport = bytes[13]! & 0x0f;
  // Families 0x0 UNSPEC, 0x1 INET, 0x2 INET6, 0x3 UNIX; transports 0x0 UNSPEC, 0x1 STREAM, 0x2 DGRAM.
  if (family > 0x3 || transport > 0x2) return { kind: 'error', reason: `v2 header: unknown family or protocol 0x${bytes[13]!.toString(16)}` };
  const length = V2_FIXED_LENGTH + bytes.readUInt16BE(14);
  if (bytes.length < length) return NEED_MORE;
  // "the receiver must accept this connection as valid and must use the real connection
  // endpoints and discard the protocol block including the family which is ignored" (LOCAL).
  if (command === 0x0) return { kind: 'header', version: 2, length };
  // githa's listeners are TCP: a datagram names no client of theirs.
  if (transport === 0x2) return { kind: 'error', reason: 'v2 header: DGRAM (UDP) on a TCP listener' };
  // UNSPEC family or protocol: "the receiver is free to accept the connection anyway and use the real
  // endpoints addresses"; an AF_UNIX client has no IP address. githa accepts these as LOCAL (as v1 UNKNOWN).
  if (family === 0x0 || family === 0x3 || transport === 0x0) return { kind: 'header', version: 2, length };
  const size = family === 0x1 ? 12 : 36;
  if (length - V2_FIXED_LENGTH < size) return { kind: 'error', reason: `v2 header: ${length - V2_FIXED_LENGTH} bytes of addresses, ${size} needed` };
  const block = bytes.subarray(V2_FIXED_LENGTH, V2_FIXED_LENGTH + size);
  // 2.2: src_addr, dst_addr, src_port, dst_port, network byte order; TLVs after them are ignored.
  const alen = family === 0x1 ? 4 : 16;
  const format = family === 0x1 ? formatIPv4 : formatIPv6;
  return {
    kind: 'header',
    version: 2,
    length,
    source: { address: format(block.subarray(0, alen)), port: block.readUInt16BE(2 * alen) },
    destination: { address: format(block.subarray(alen, 2 * alen)), port: block.readUInt16BE(2 * alen + 2) },
  };
}

function formatIPv4(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** IPv6 text as node's sockets show it (RFC 5952; an IPv4-mapped address as ::ffff:a.b.c.d). */
function formatIPv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return `::ffff:${formatIPv4(b.subarray(12))}`;
  return canonicalIPv6(groups.join(':'));
}

/** RFC 5952 text of a valid IPv6 address (the URL parser's serializer does exactly that). */
function canonicalIPv6(text: string): string {
  const host = new URL(`http://[${text}]/`).hostname;
  const inner = host.slice(1, -1);
  // The URL serializer writes an IPv4-mapped address in hex (::ffff:7f00:1); node's sockets write it dotted.
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(inner);
  if (!m) return inner;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `::ffff:${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}
