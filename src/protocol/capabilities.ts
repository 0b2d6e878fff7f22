/**
 * Capability lists (gitprotocol-capabilities). In protocol v0/v1 they travel
 * space-separated behind a NUL on the first line of the ref advertisement
 * (server) and of the first want/command (client); in v2 each is its own
 * pkt-line "key[=value]" (see capability-advertisement.ts).
 */
import { ProtocolSyntaxError } from '../errors.js';

/**
 * Splits a v0/v1 capability list. Empty tokens are dropped: git's send-pack
 * writes the list with a leading space ("\0 report-status ...") and
 * gitprotocol-http's grammar (`cap_list = *(SP capability) SP`) allows a
 * trailing one.
 */
export function parseCapabilityList(s: string): string[] {
  return s.split(' ').filter((token) => token.length > 0);
}

/** True when `name` (or `name=...`) is in the list. */
export function hasCapability(caps: readonly string[], name: string): boolean {
  return caps.some((c) => c === name || c.startsWith(`${name}=`));
}

/** The value of the first `name=value` capability, or undefined. */
export function capabilityValue(caps: readonly string[], name: string): string | undefined {
  const prefix = `${name}=`;
  const found = caps.find((c) => c.startsWith(prefix));
  return found === undefined ? undefined : found.slice(prefix.length);
}

/** gitprotocol-v2: key = 1*(ALPHA | DIGIT | "-_"). */
const V2_KEY_RE = /^[A-Za-z0-9_-]+$/;

/** Parses one v2 "key[=value]" line into [key, value-or-true]. */
export function parseV2Capability(line: string, what: string): [string, string | true] {
  const eq = line.indexOf('=');
  const key = eq < 0 ? line : line.slice(0, eq);
  if (!V2_KEY_RE.test(key)) throw new ProtocolSyntaxError(`invalid capability in ${what}`);
  return [key, eq < 0 ? true : line.slice(eq + 1)];
}

/** Encodes one v2 capability line's text (without LF). */
export function formatV2Capability(key: string, value: string | true): string {
  if (!V2_KEY_RE.test(key)) throw new ProtocolSyntaxError(`invalid capability name ${JSON.stringify(key)}`);
  if (value !== true && /[\0\n]/.test(value)) {
    throw new ProtocolSyntaxError(`capability ${key} has a value with NUL or LF`);
  }
  return value === true ? key : `${key}=${value}`;
}
