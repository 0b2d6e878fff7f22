/**
 * The answer to smart HTTP's discovery request `GET info/refs?service=…`
 * sent with `Git-Protocol: version=2`, which tells which protocol the server
 * speaks:
 *
 * - gitprotocol-v2 "HTTP Transport": a v2 server answers with the capability
 *   advertisement ("version 2", capabilities, flush); git http-backend sends
 *   it without the "# service=" preamble.
 * - gitprotocol-http "Smart Server Response": a server that ignores the
 *   header (an old git, or a web server that does not pass `Git-Protocol` on
 *   as GIT_PROTOCOL) answers "# service=<name>", flush, then the v0 ref
 *   advertisement (gitprotocol-pack "Reference Discovery") and a flush.
 */
import { ProtocolSyntaxError } from '../errors.js';
import { parseAdvertisement, parseHttpServiceHeader, type RefAdvertisement } from './advertisement.js';
import { parseCapabilityAdvertisement, type V2Capabilities } from './capability-advertisement.js';
import { type Pkt, pktText } from './pkt-line.js';

export type Discovery = { version: 2; capabilities: V2Capabilities } | { version: 0 | 1; advertisement: RefAdvertisement };

/** Splits packets at each flush-pkt; the flushes are dropped. A tail without its flush is a section too. */
function sections(pkts: readonly Pkt[]): Pkt[][] {
  const out: Pkt[][] = [[]];
  for (const p of pkts) {
    if (p.type === 'flush') out.push([]);
    else out[out.length - 1]!.push(p);
  }
  if (out[out.length - 1]!.length === 0) out.pop();
  return out;
}

/**
 * Parses the whole discovery answer (every packet of the body). Each part
 * must end with its flush-pkt, and nothing may follow the last one.
 */
export function parseDiscovery(pkts: readonly Pkt[], service: string): Discovery {
  if (pkts.length === 0) throw new ProtocolSyntaxError('empty discovery answer');
  if (pkts[pkts.length - 1]!.type !== 'flush') throw new ProtocolSyntaxError('discovery answer ended before a flush-pkt');
  const parts = sections(pkts);
  const first = parts[0]?.[0];
  if (first?.type === 'data' && pktText(first.payload) === 'version 2') {
    if (parts.length !== 1) throw new ProtocolSyntaxError('data after the v2 capability advertisement');
    return { version: 2, capabilities: parseCapabilityAdvertisement(parts[0]!) };
  }
  const [header = [], advertised = [], ...more] = parts;
  const announced = parseHttpServiceHeader(header).service;
  if (announced !== service) throw new ProtocolSyntaxError(`discovery answer is for ${announced}, not ${service}`);
  if (more.length > 0) throw new ProtocolSyntaxError('data after the ref advertisement');
  // gitprotocol-http: an empty repository's v0 advertisement may be the
  // no-refs line or nothing at all before the flush.
  const advertisement = parseAdvertisement(advertised);
  return { version: advertisement.version, advertisement };
}

/** HEAD's symbolic target from a v0 advertisement's `symref=HEAD:<target>` capability (gitprotocol-capabilities "symref"). */
export function advertisedHeadTarget(adv: RefAdvertisement): string | undefined {
  for (const c of adv.capabilities) if (c.startsWith('symref=HEAD:')) return c.slice('symref=HEAD:'.length);
  return undefined;
}
