/**
 * Checkable ls-refs (docs/architecture.md "Verified copies"): a client's
 * `ls-refs` with `ref-prefix` arguments (what `git fetch` and `git clone`
 * send) asks for part of the listing, and a part cannot be compared with the
 * one checksum the record keeps per copy. githa sends the request on without
 * its `ref-prefix` arguments, checks the whole listing, and passes on only
 * the lines the client's prefixes select. gitprotocol-v2 "ls-refs": the
 * prefixes are "purely for optimization; a server MAY show refs not matching
 * the prefix", so the backend's answer to the wider request is a valid
 * answer to the narrower one, and the filtered one is what the backend would
 * have sent.
 */
import { ProtocolSyntaxError } from '../errors.js';
import { encodePktValue, type Pkt, pktText } from './pkt-line.js';

const REF_PREFIX = 'ref-prefix ';

export interface WidenedLsRefs {
  /** The request to send: the client's packets, byte for byte, less its ref-prefix arguments. */
  request: Buffer;
  /** The client's prefixes; none means the client asked for every ref. */
  prefixes: string[];
}

/** Drops the `ref-prefix` arguments of one ls-refs request (its packets, flush included). */
export function widenLsRefs(pkts: readonly Pkt[]): WidenedLsRefs {
  const kept: Buffer[] = [];
  const prefixes: string[] = [];
  let inArgs = false;
  for (const pkt of pkts) {
    if (pkt.type === 'delim' && !inArgs) inArgs = true;
    else if (inArgs && pkt.type === 'data') {
      const text = pktText(pkt.payload);
      if (text.startsWith(REF_PREFIX)) {
        const prefix = text.slice(REF_PREFIX.length);
        if (prefix.length === 0) throw new ProtocolSyntaxError('empty ref-prefix in ls-refs');
        prefixes.push(prefix);
        continue;
      }
    }
    kept.push(encodePktValue(pkt));
  }
  return { request: Buffer.concat(kept), prefixes };
}

/** The ref name of one ls-refs response line ("<oid> <name>[ <attr>…]"), or undefined when the line has none. */
function refNameOf(payload: Buffer): string | undefined {
  const first = payload.indexOf(0x20);
  if (first < 0) return undefined;
  let end = payload.indexOf(0x20, first + 1);
  if (end < 0) end = payload.length;
  if (payload[end - 1] === 0x0a) end--;
  return payload.toString('utf8', first + 1, end);
}

/** Whether a response line is one the client's prefixes select (every line when it sent none). */
export function selectedByPrefixes(payload: Buffer, prefixes: readonly string[]): boolean {
  if (prefixes.length === 0) return true;
  const name = refNameOf(payload);
  return name !== undefined && prefixes.some((p) => name.startsWith(p));
}
