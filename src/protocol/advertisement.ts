/**
 * The v0/v1 reference advertisement (gitprotocol-pack "Reference Discovery")
 * and the smart-HTTP "# service=" preamble (gitprotocol-http "Smart Clients").
 *
 *   advertised-refs = *1("version 1") (no-refs / list-of-refs) *shallow flush-pkt
 *   no-refs         = PKT-LINE(zero-id SP "capabilities^{}" NUL capability-list)
 *   first-ref       = PKT-LINE(obj-id SP refname NUL capability-list)
 *   other-peeled    = obj-id SP refname "^{}"
 *   shallow         = PKT-LINE("shallow" SP obj-id)
 *
 * A v2 server answers a "version=2" request with "version 2" and a capability
 * advertisement instead: see capability-advertisement.ts.
 */
import { ProtocolSyntaxError, RemoteFatalError } from '../errors.js';
import { capabilityValue, parseCapabilityList } from './capabilities.js';
import { ObjectIdFormat, ZERO_OID, ZERO_OID_SHA256 } from './object-id.js';
import { checkWireRefName } from './ref-name.js';
import {
  decodeUtf8Strict,
  encodePkt,
  errPktMessage,
  FLUSH_PKT,
  isErrPkt,
  type Pkt,
  pktText,
  pktTextStrict,
} from './pkt-line.js';
import { parseService } from './request.js';

export { parseCapabilityList } from './capabilities.js';

export interface AdvertisedRef {
  oid: string;
  name: string;
}

export interface RefAdvertisement {
  version: 0 | 1;
  /**
   * In order. Excludes the peeled "^{}" lines and the empty repository's
   * "capabilities^{}" pseudo-ref; includes receive-pack's ".have" lines
   * (alternate object stores' tips) under the name ".have".
   */
  refs: AdvertisedRef[];
  /** Ref name -> the object its annotated tag peels to. */
  peeled: Map<string, string>;
  /** From the first line, after the NUL. */
  capabilities: string[];
  shallow: string[];
}

const PEELED_SUFFIX = '^{}';
const NO_REFS_NAME = 'capabilities^{}';

/**
 * Parses the packets of an advertisement, up to and excluding its flush (a
 * trailing flush is tolerated). An empty list is an empty advertisement (what
 * very old servers send for an empty repository).
 */
export function parseAdvertisement(pkts: Pkt[]): RefAdvertisement {
  const adv: RefAdvertisement = { version: 0, refs: [], peeled: new Map(), capabilities: [], shallow: [] };
  const oids = new ObjectIdFormat();
  let lineNo = 0;
  let sawNoRefs = false;
  let lastRef: string | undefined;
  for (let i = 0; i < pkts.length; i++) {
    const pkt = pkts[i] as Pkt;
    if (pkt.type !== 'data') {
      if (pkt.type === 'flush' && i === pkts.length - 1) break;
      throw new ProtocolSyntaxError(`unexpected ${pkt.type} packet in the ref advertisement`);
    }
    const payload = pkt.payload;
    if (isErrPkt(payload)) throw new RemoteFatalError(errPktMessage(payload));
    if (i === 0 && pktText(payload).startsWith('version ')) {
      // "version 1" answers a version=1 request; "version 2" starts a v2 capability advertisement.
      if (pktText(payload) !== 'version 1') {
        throw new ProtocolSyntaxError('not a v0/v1 ref advertisement (a v2 capability advertisement?)');
      }
      adv.version = 1;
      continue;
    }
    const first = lineNo === 0;
    lineNo++;
    // The capability list only follows a NUL on the first line.
    const nul = payload.indexOf(0);
    let line = payload;
    if (nul >= 0) {
      if (!first) throw new ProtocolSyntaxError('NUL in a ref advertisement line other than the first');
      adv.capabilities = parseCapabilityList(pktText(payload.subarray(nul + 1)));
      line = payload.subarray(0, nul);
    }
    const text = nul >= 0 ? decodeUtf8Strict(line, 'ref advertisement') : pktTextStrict(line, 'ref advertisement');
    if (text.startsWith('shallow ')) {
      adv.shallow.push(oids.parse(text.slice(8), 'shallow line'));
      continue;
    }
    if (adv.shallow.length > 0) throw new ProtocolSyntaxError('ref after shallow lines in the advertisement');
    const sp = text.indexOf(' ');
    if (sp < 0) throw new ProtocolSyntaxError('ref advertisement line without a space');
    const oid = oids.parse(text.slice(0, sp), 'ref advertisement');
    const name = text.slice(sp + 1);
    if (name === NO_REFS_NAME) {
      // no-refs: only as the sole ref line, with the zero id.
      if (!first || !/^0+$/.test(oid)) throw new ProtocolSyntaxError('misplaced capabilities^{} line');
      sawNoRefs = true;
      continue;
    }
    if (sawNoRefs) throw new ProtocolSyntaxError('ref after capabilities^{} line');
    if (name.endsWith(PEELED_SUFFIX)) {
      // "The peeled value of a ref MUST be immediately after the ref itself."
      const base = name.slice(0, -PEELED_SUFFIX.length);
      if (base !== lastRef || adv.peeled.has(base)) {
        throw new ProtocolSyntaxError('peeled ref does not follow its ref');
      }
      adv.peeled.set(base, oid);
      continue;
    }
    checkWireRefName(name, 'ref advertisement');
    adv.refs.push({ oid, name });
    lastRef = name;
  }
  return adv;
}

/** Encodes an advertisement, including the final flush. */
export function encodeAdvertisement(adv: RefAdvertisement): Buffer {
  const parts: Buffer[] = [];
  if (adv.version === 1) parts.push(encodePkt('version 1\n'));
  const caps = adv.capabilities.join(' ');
  if (adv.refs.length === 0) {
    const zero = capabilityValue(adv.capabilities, 'object-format') === 'sha256' ? ZERO_OID_SHA256 : ZERO_OID;
    parts.push(encodePkt(`${zero} ${NO_REFS_NAME}\0${caps}\n`));
  }
  adv.refs.forEach((ref, i) => {
    checkWireRefName(ref.name, 'ref advertisement');
    parts.push(encodePkt(i === 0 ? `${ref.oid} ${ref.name}\0${caps}\n` : `${ref.oid} ${ref.name}\n`));
    const peeled = adv.peeled.get(ref.name);
    if (peeled !== undefined) parts.push(encodePkt(`${peeled} ${ref.name}${PEELED_SUFFIX}\n`));
  });
  for (const oid of adv.shallow) parts.push(encodePkt(`shallow ${oid}\n`));
  parts.push(FLUSH_PKT);
  return Buffer.concat(parts);
}

const SERVICE_PREFIX = '# service=';

/**
 * Parses smart HTTP's preamble: "# service=<name>" and a flush
 * (gitprotocol-http "Smart Server Response"). Accepts the packet alone or
 * followed by its flush; the service must be one githa knows.
 */
export function parseHttpServiceHeader(pkts: Pkt[]): { service: string } {
  const [first, second, ...more] = pkts;
  if (first === undefined || first.type !== 'data') {
    throw new ProtocolSyntaxError('missing "# service=" line');
  }
  if (isErrPkt(first.payload)) throw new RemoteFatalError(errPktMessage(first.payload));
  if ((second !== undefined && second.type !== 'flush') || more.length > 0) {
    throw new ProtocolSyntaxError('"# service=" line must be followed by a flush');
  }
  const text = pktText(first.payload);
  if (!text.startsWith(SERVICE_PREFIX)) throw new ProtocolSyntaxError('missing "# service=" line');
  return { service: parseService(text.slice(SERVICE_PREFIX.length)) };
}

/** Encodes the "# service=<name>\n" packet and its flush. */
export function encodeHttpServiceHeader(service: string): Buffer {
  return Buffer.concat([encodePkt(`${SERVICE_PREFIX}${parseService(service)}\n`), FLUSH_PKT]);
}
