/**
 * The protocol v2 "ls-refs" command (gitprotocol-v2 "ls-refs"): the v2 ref
 * advertisement, requested explicitly and optionally limited by prefixes.
 *
 *   output = *ref flush-pkt
 *   ref    = PKT-LINE(obj-id-or-unborn SP refname *(SP ref-attribute) LF)
 *   ref-attribute = "symref-target:" symref-target | "peeled:" obj-id
 */
import { ProtocolSyntaxError, RemoteFatalError } from '../errors.js';
import { encodeV2Command, requestCapabilities } from './command-request.js';
import { ObjectIdFormat } from './object-id.js';
import { checkWireRefName } from './ref-name.js';
import { errPktMessage, isErrPkt, type Pkt, pktTextStrict } from './pkt-line.js';

export { parseV2Command, type V2CommandRequest } from './command-request.js';

export interface LsRefsRequest {
  symrefs?: boolean;
  peel?: boolean;
  refPrefixes?: string[];
  /** Only if the server advertised "ls-refs=unborn". */
  unborn?: boolean;
  agent?: string;
  objectFormat?: string;
  /** "server-option=<option>" capability lines (only if advertised). */
  serverOptions?: string[];
}

/** Encodes "command=ls-refs", the capability lines, delim, the arguments and the flush. */
export function encodeLsRefsRequest(r: LsRefsRequest): Buffer {
  const args: string[] = [];
  if (r.symrefs === true) args.push('symrefs');
  if (r.peel === true) args.push('peel');
  if (r.unborn === true) args.push('unborn');
  for (const prefix of r.refPrefixes ?? []) args.push(`ref-prefix ${prefix}`);
  return encodeV2Command('ls-refs', requestCapabilities(r), args);
}

export interface LsRefsEntry {
  /** The object id; for an unborn HEAD the zero id (no object). */
  oid: string;
  name: string;
  symrefTarget?: string;
  peeled?: string;
  unborn?: boolean;
}

const SYMREF = 'symref-target:';
const PEELED = 'peeled:';

/**
 * Parses ls-refs output, up to and excluding the flush (a trailing flush is
 * tolerated). Unknown ref attributes are ignored, as clients must.
 */
export function parseLsRefsResponse(pkts: Pkt[]): LsRefsEntry[] {
  const oids = new ObjectIdFormat();
  const parsed: LsRefsEntry[] = [];
  pkts.forEach((pkt, i) => {
    if (pkt.type !== 'data') {
      if (pkt.type === 'flush' && i === pkts.length - 1) return;
      throw new ProtocolSyntaxError(`unexpected ${pkt.type} packet in the ls-refs response`);
    }
    if (isErrPkt(pkt.payload)) throw new RemoteFatalError(errPktMessage(pkt.payload));
    const [id, name, ...attrs] = pktTextStrict(pkt.payload, 'ls-refs response').split(' ');
    if (id === undefined || name === undefined) throw new ProtocolSyntaxError('ls-refs line without a ref name');
    const entry: LsRefsEntry = { oid: '', name: checkWireRefName(name, 'ls-refs response') };
    if (id === 'unborn') entry.unborn = true;
    else entry.oid = oids.parse(id, 'ls-refs response');
    for (const attr of attrs) {
      if (attr.startsWith(SYMREF)) {
        entry.symrefTarget = checkWireRefName(attr.slice(SYMREF.length), 'ls-refs symref-target');
      } else if (attr.startsWith(PEELED)) {
        entry.peeled = oids.parse(attr.slice(PEELED.length), 'ls-refs peeled');
      } else if (attr.length === 0) {
        throw new ProtocolSyntaxError('empty attribute in the ls-refs response');
      }
    }
    parsed.push(entry);
  });
  // The zero id of the response's object format, known only once we saw an id.
  for (const entry of parsed) if (entry.unborn === true) entry.oid = oids.zero;
  return parsed;
}
