/**
 * Which githa user a TLS client certificate identifies (docs/security.md
 * "Client certificates"). Pure: the HTTP front end passes what node's
 * TLSSocket reports (`authorized`, getPeerCertificate()).
 *
 * The identity is the subject's common name (CN): the one name a CA signs
 * for the holder in every certificate profile, and what `openssl req -subj
 * /CN=alice` and every small CA tool set. `tls.clientUsers` maps CNs to user
 * names instead, for CAs whose CNs are not githa user names (full names,
 * host names); with it, a CN it does not list identifies nobody. A
 * certificate that did not verify against tls.clientCa identifies nobody,
 * whatever it says: anybody can make a certificate with any CN.
 */

/** The part of node's PeerCertificate read here. */
export interface PeerCertificateLike {
  readonly subject?: Readonly<Record<string, string | readonly string[] | undefined>> | null;
}

/** User names as the configuration spells them (src/config/schema.ts userName). */
export const USER_NAME = /^[\w.@+-]{1,128}$/u;

/**
 * The user a client certificate identifies, or undefined: unverified, no
 * CN, more than one CN (ambiguous), a CN that is not a valid user name, or a
 * CN that `users` (when given) does not list.
 */
export function certificateUser(cert: PeerCertificateLike | undefined, authorized: boolean, users?: Readonly<Record<string, string>>): string | undefined {
  if (!authorized || !cert?.subject) return undefined;
  const cn = cert.subject.CN;
  // Node gives an array when the subject repeats CN: which one is meant is not ours to guess.
  if (typeof cn !== 'string' || cn.length === 0) return undefined;
  if (users) return Object.hasOwn(users, cn) ? users[cn] : undefined;
  return USER_NAME.test(cn) ? cn : undefined;
}
