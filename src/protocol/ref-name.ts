/**
 * Reference names as they appear on the wire (gitprotocol-common "refname").
 *
 * githa does not re-implement git-check-ref-format: the Git servers behind it
 * enforce the full rules. It only checks what the framing depends on, so that
 * a hostile name cannot smuggle a field or a line: non-empty, no NUL, no
 * whitespace, no ASCII control character (all forbidden by rule 4 anyway).
 */
import { ProtocolSyntaxError } from '../errors.js';

/** Longest ref name accepted (git itself has no limit below the pkt-line size). */
export const MAX_REF_NAME_LENGTH = 4096;

// eslint-disable-next-line no-control-regex -- git-check-ref-format forbids bytes below 0x20 and DEL
const FORBIDDEN_RE = /[\x00-\x20\x7f]/;

/** True when `name` can be a ref name on the wire (see the module comment). */
export function isWireRefName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_REF_NAME_LENGTH && !FORBIDDEN_RE.test(name);
}

/** Returns `name`, or raises ProtocolSyntaxError naming `what`. */
export function checkWireRefName(name: string, what: string): string {
  if (!isWireRefName(name)) throw new ProtocolSyntaxError(`invalid ref name in ${what}`);
  return name;
}
