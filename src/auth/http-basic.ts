/**
 * The `Authorization: Basic` header (RFC 7617), parsed without trusting it:
 * strict base64 (RFC 4648 alphabet, canonical padding), strict UTF-8, a user
 * name without ":" or control characters, bounded sizes. The password is
 * returned to be verified and must never be logged.
 */

export type BasicCredentials =
  | { kind: 'none' }
  | { kind: 'basic'; user: string; password: string }
  /** Present but not usable Basic credentials (another scheme, bad base64, bad UTF-8, bad user name). */
  | { kind: 'invalid' };

/** Longer headers are refused: no legitimate user name and password come close. */
export const MAX_AUTHORIZATION_LENGTH = 4096;

/** User names githa accepts: what the push log and the request log can carry safely. */
export const USER_NAME = /^[\w.@+-]{1,128}$/u;

export function parseBasicAuthorization(header: string | readonly string[] | undefined): BasicCredentials {
  if (header === undefined) return { kind: 'none' };
  // Two Authorization headers: node joins most duplicates, but not this one; ambiguous either way.
  if (typeof header !== 'string') return { kind: 'invalid' };
  if (header.length > MAX_AUTHORIZATION_LENGTH) return { kind: 'invalid' };
  const m = /^Basic[ ]+([A-Za-z0-9+/]+={0,2})[ ]*$/i.exec(header);
  if (!m) return { kind: 'invalid' };
  const token = m[1] as string;
  if (token.length % 4 !== 0) return { kind: 'invalid' };
  const bytes = Buffer.from(token, 'base64');
  // Buffer.from skips what it does not understand: require the canonical encoding back.
  if (bytes.toString('base64') !== token) return { kind: 'invalid' };
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { kind: 'invalid' };
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return { kind: 'invalid' };
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (!USER_NAME.test(user)) return { kind: 'invalid' };
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(password)) return { kind: 'invalid' };
  return { kind: 'basic', user, password };
}

/** The value of `WWW-Authenticate` for a realm (RFC 7617 2; the realm is validated by the config schema). */
export function basicChallenge(realm: string): string {
  return `Basic realm="${realm}", charset="UTF-8"`;
}
