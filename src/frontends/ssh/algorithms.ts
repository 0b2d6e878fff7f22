import type { Algorithms, ParsedKey } from 'ssh2';

/**
 * The SSH front end's algorithms, given to ssh2's Server explicitly so that an
 * ssh2 upgrade cannot silently widen them. Roughly OpenSSH 9.x's defaults
 * minus everything it has deprecated; OpenSSH clients since 7.x connect.
 *
 * Strict KEX (the Terrapin fix, CVE-2023-48795; OpenSSH PROTOCOL §1.10):
 * ssh2 >= 1.15 appends `kex-strict-s-v00@openssh.com` to every server offer
 * it builds from these lists; nothing to add here, and
 * test/integration/ssh-security.test.ts reads the KEXINIT githa sends to prove
 * it is there.
 */
export const SSH_ALGORITHMS = {
  kex: [
    'curve25519-sha256',
    'curve25519-sha256@libssh.org',
    'ecdh-sha2-nistp256',
    'ecdh-sha2-nistp384',
    'ecdh-sha2-nistp521',
    'diffie-hellman-group-exchange-sha256',
    'diffie-hellman-group16-sha512',
    'diffie-hellman-group18-sha512',
    'diffie-hellman-group14-sha256',
    // Excluded:
    // - diffie-hellman-group1-sha1: a 1024-bit group (Logjam) and SHA-1; RFC 9142 §4 MUST NOT.
    // - diffie-hellman-group14-sha1, diffie-hellman-group-exchange-sha1: SHA-1 exchange hash (RFC 9142 §4 SHOULD NOT).
    // - diffie-hellman-group15-sha512, -group17-sha512: valid, but no OpenSSH offers them; fewer code paths.
  ],
  serverHostKey: [
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'rsa-sha2-512',
    'rsa-sha2-256',
    // Excluded:
    // - ssh-dss: 1024-bit DSA, removed from OpenSSH 9.8.
    // - ssh-rsa: RSA signatures with SHA-1 (chosen-prefix collisions; off in OpenSSH since 8.8).
    //   Caveat: ssh2 1.17 still offers ssh-rsa, last, for an RSA host key whatever this list says;
    //   hence rsaHostKeyWarning below: prefer ed25519 or ECDSA host keys.
  ],
  cipher: [
    'chacha20-poly1305@openssh.com',
    'aes128-gcm@openssh.com',
    'aes256-gcm@openssh.com',
    'aes128-ctr',
    'aes192-ctr',
    'aes256-ctr',
    // Excluded:
    // - *-cbc (aes, 3des, blowfish, cast128): CBC mode in SSH leaks plaintext (CVE-2008-5161).
    // - arcfour*: RC4 biases (RFC 8758 deprecates it).
    // - aes128-gcm / aes256-gcm (RFC 5647 names): their MAC negotiation differs from the
    //   @openssh.com variants and no OpenSSH speaks them.
  ],
  hmac: [
    'hmac-sha2-256-etm@openssh.com',
    'hmac-sha2-512-etm@openssh.com',
    'hmac-sha2-256',
    'hmac-sha2-512',
    // Excluded (AEAD ciphers above need no MAC; these are for the -ctr ones):
    // - hmac-sha1, hmac-sha1-etm@openssh.com, hmac-sha1-96: SHA-1.
    // - hmac-md5, hmac-md5-96: MD5.
    // - hmac-ripemd160: unmaintained, no OpenSSH since 7.6.
    // - hmac-sha2-*-96: truncated tags, no OpenSSH offers them.
  ],
  compress: [
    'none',
    'zlib@openssh.com',
    // Excluded: plain `zlib` starts compressing before authentication, which lets an
    // unauthenticated client feed githa's inflater (OpenSSH dropped it from sshd in 7.4).
  ],
} satisfies Algorithms;

/** Algorithms nobody may negotiate with githa: what the tests offer alone and expect refused. */
export const WEAK_ALGORITHMS = {
  kex: ['diffie-hellman-group1-sha1', 'diffie-hellman-group14-sha1', 'diffie-hellman-group-exchange-sha1'],
  serverHostKey: ['ssh-dss'],
  cipher: ['aes128-cbc', 'aes192-cbc', 'aes256-cbc', '3des-cbc', 'blowfish-cbc', 'cast128-cbc', 'arcfour', 'arcfour128', 'arcfour256'],
  hmac: ['hmac-sha1', 'hmac-sha1-etm@openssh.com', 'hmac-sha1-96', 'hmac-md5', 'hmac-md5-96', 'hmac-ripemd160'],
  compress: ['zlib'],
} as const;

/** A warning to log at start-up when a host key would also be offered with SHA-1 signatures, else undefined. */
export function rsaHostKeyWarning(keys: ReadonlyArray<Pick<ParsedKey, 'type'>>): string | undefined {
  if (!keys.some((k) => k.type === 'ssh-rsa')) return undefined;
  return 'an RSA host key is configured: ssh2 also offers it with ssh-rsa (SHA-1) signatures; prefer ed25519 or ECDSA host keys (docs/security.md#ssh)';
}
