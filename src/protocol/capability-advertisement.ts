/**
 * The protocol v2 capability advertisement (gitprotocol-v2 "Capability
 * Advertisement"): what a server sends first when the client asked for
 * version=2.
 *
 *   capability-advertisement = protocol-version capability-list flush-pkt
 *   protocol-version = PKT-LINE("version 2" LF)
 *   capability       = PKT-LINE(key[=value] LF)
 *
 * Commands (ls-refs, fetch, object-info, ...) are capabilities too; their
 * value lists the features they support ("fetch=shallow wait-for-done").
 */
import { ProtocolSyntaxError, RemoteFatalError } from '../errors.js';
import { formatV2Capability, parseV2Capability } from './capabilities.js';
import { encodePkt, errPktMessage, FLUSH_PKT, isErrPkt, type Pkt, pktText } from './pkt-line.js';

export interface V2Capabilities {
  version: 2;
  /** key -> value, or `true` for a key without "=value". In advertised order. */
  capabilities: Map<string, string | true>;
}

/**
 * Parses the advertisement's packets, up to and excluding the flush (a
 * trailing flush is tolerated). A repeated key keeps its first value, as git's
 * client does (it searches the list from the start).
 */
export function parseCapabilityAdvertisement(pkts: Pkt[]): V2Capabilities {
  const capabilities = new Map<string, string | true>();
  pkts.forEach((pkt, i) => {
    if (pkt.type !== 'data') {
      if (pkt.type === 'flush' && i === pkts.length - 1 && i > 0) return;
      throw new ProtocolSyntaxError(`unexpected ${pkt.type} packet in the capability advertisement`);
    }
    if (isErrPkt(pkt.payload)) throw new RemoteFatalError(errPktMessage(pkt.payload));
    const text = pktText(pkt.payload);
    if (i === 0) {
      if (text !== 'version 2') throw new ProtocolSyntaxError('capability advertisement must start with "version 2"');
      return;
    }
    const [key, value] = parseV2Capability(text, 'capability advertisement');
    if (!capabilities.has(key)) capabilities.set(key, value);
  });
  if (pkts.length === 0) throw new ProtocolSyntaxError('empty capability advertisement');
  return { version: 2, capabilities };
}

/** Encodes "version 2", one line per capability, and the flush. */
export function encodeCapabilityAdvertisement(c: V2Capabilities): Buffer {
  const parts = [encodePkt('version 2\n')];
  for (const [key, value] of c.capabilities) parts.push(encodePkt(`${formatV2Capability(key, value)}\n`));
  parts.push(FLUSH_PKT);
  return Buffer.concat(parts);
}

/** The features a v2 command capability lists ("fetch=shallow filter" -> ["shallow", "filter"]). */
export function commandFeatures(c: V2Capabilities, command: string): string[] | undefined {
  const value = c.capabilities.get(command);
  if (value === undefined) return undefined;
  return value === true ? [] : value.split(' ').filter((f) => f.length > 0);
}
