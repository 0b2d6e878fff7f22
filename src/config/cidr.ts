/**
 * Address ranges in CIDR notation (RFC 4632 for IPv4, RFC 4291 2.3 for IPv6),
 * as `listen.proxyProtocolFrom` names them: `10.0.0.0/8`, `2001:db8::/32`, or
 * one address (`192.0.2.7`: a /32, a /128 for IPv6). Pure; the config schema
 * checks each entry with it and src/frontends/proxy-listener.ts builds its
 * node:net BlockList from the same parse.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** The range `text` names, or undefined when it names none (no host names, no zone ids). */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^([0-9a-fA-F:.]+)(?:\/(0|[1-9][0-9]{0,2}))?$/.exec(text);
  if (!m) return undefined;
  const address = m[1]!;
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (!family) return undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  return prefix <= max ? { address, prefix, family } : undefined;
}
