/**
 * Object ids on the wire (gitprotocol-common "obj-id"; gitprotocol-v2
 * "object-format"): 40 hex digits for SHA-1, 64 for SHA-256. Senders MUST use
 * lowercase but receivers MUST treat them case-insensitively
 * (gitprotocol-pack "Reference Discovery"), so parsed ids are lowercased.
 */
import { ProtocolSyntaxError } from '../errors.js';

/** The SHA-1 zero id: "no object" (a create's old id, a delete's new id). */
export const ZERO_OID = '0'.repeat(40);
export const ZERO_OID_SHA256 = '0'.repeat(64);

const OID_RE = /^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/;
const ZERO_RE = /^(?:0{40}|0{64})$/;

/** True for the all-zero id of either object format. */
export function isZeroOid(oid: string): boolean {
  return ZERO_RE.test(oid);
}

/** Validates and lowercases an object id; ProtocolSyntaxError names `what` otherwise. */
export function parseObjectId(s: string, what: string): string {
  if (!OID_RE.test(s)) throw new ProtocolSyntaxError(`invalid object id in ${what}`);
  return s.toLowerCase();
}

/**
 * Remembers the length of the first object id of a message and rejects ids of
 * the other length: one message never mixes object formats. An explicit
 * `object-format` capability fixes the length up front.
 */
export class ObjectIdFormat {
  private hexLength: number | undefined;

  constructor(objectFormat?: string) {
    if (objectFormat === 'sha1') this.hexLength = 40;
    else if (objectFormat === 'sha256') this.hexLength = 64;
    else if (objectFormat !== undefined) {
      throw new ProtocolSyntaxError(`unknown object-format ${JSON.stringify(objectFormat.slice(0, 32))}`);
    }
  }

  /** Like parseObjectId, and checks the length against earlier ids. */
  parse(s: string, what: string): string {
    const oid = parseObjectId(s, what);
    if (this.hexLength === undefined) this.hexLength = oid.length;
    else if (oid.length !== this.hexLength) {
      throw new ProtocolSyntaxError(`object id of the wrong length in ${what}`);
    }
    return oid;
  }

  /**
   * Applies an object-format capability that arrived after some ids (a push's
   * shallow lines precede the capabilities): the ids seen must match it.
   */
  expect(objectFormat: string): void {
    const wanted = new ObjectIdFormat(objectFormat).hexLength as number;
    if (this.hexLength !== undefined && this.hexLength !== wanted) {
      throw new ProtocolSyntaxError(`object ids do not match object-format ${objectFormat}`);
    }
    this.hexLength = wanted;
  }

  /** The zero id of this format (SHA-1 until an id or object-format says otherwise). */
  get zero(): string {
    return this.hexLength === 64 ? ZERO_OID_SHA256 : ZERO_OID;
  }
}
