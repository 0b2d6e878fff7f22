/**
 * OpenSSH known_hosts files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"), enough to
 * verify the host key of a backend the way `ssh -o StrictHostKeyChecking=yes`
 * does:
 *
 *   [marker] hostpatterns keytype base64-key [comment]
 *
 * - hostpatterns: comma-separated patterns with `*` and `?` wildcards and `!`
 *   negation, matched case-insensitively against `host` (port 22) or
 *   `[host]:port` (any other port); or one hashed entry `|1|salt|hash` where
 *   hash = HMAC-SHA1(key = salt, data = that name), both base64;
 * - marker: `@revoked` (the key is refused wherever it is presented) or
 *   `@cert-authority` (host certificates: not supported, such lines are ignored).
 *
 * Pure: the caller reads the file (again on every connection, so an edited
 * known_hosts takes effect on the next reconnect).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface KnownHostLine {
  marker: 'revoked' | 'cert-authority' | undefined;
  /** The host field as written (patterns, or one `|1|salt|hash`). */
  hosts: string;
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, … */
  type: string;
  /** The public key blob (SSH wire format), decoded from base64. */
  key: Buffer;
  /** 1-based line number, for messages. */
  line: number;
}

/** Parses known_hosts text; malformed lines are skipped, as ssh does. */
export function parseKnownHosts(text: string): KnownHostLine[] {
  const out: KnownHostLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/[ \t]+/);
    let marker: KnownHostLine['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else return; // unknown marker: ssh ignores the line
    }
    const [hosts, type, b64] = fields;
    if (hosts === undefined || type === undefined || b64 === undefined) return;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) return;
    out.push({ marker, hosts, type, key, line: i + 1 });
  });
  return out;
}

/** The name ssh looks up for a host and port: `host`, or `[host]:port` when the port is not 22. */
export function knownHostName(host: string, port: number): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const name = bare.toLowerCase();
  return port === 22 ? name : `[${name}]:${port}`;
}

/** Glob match with `*` (any run) and `?` (one character), as OpenSSH's match_pattern. */
export function matchPattern(name: string, pattern: string): boolean {
  let n = 0;
  let p = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === name[n])) {
      n++;
      p++;
    } else if (p < pattern.length && pattern[p] === '*') {
      starP = p++;
      starN = n;
    } else if (starP >= 0) {
      p = starP + 1;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Whether a host field (hashed entry or pattern list) names `name` (from knownHostName). */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (salt === undefined || hash === undefined) return false;
    const expected = Buffer.from(hash, 'base64');
    const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }
  let matched = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (pattern === '' || !matchPattern(name, pattern)) continue;
    if (negated) return false; // a negated match wins over any positive one
    matched = true;
  }
  return matched;
}

/** The host key hashed like OpenSSH prints it: `SHA256:<base64 without padding>`. */
export function keyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a public key blob (its first SSH string), or undefined. */
export function blobKeyType(key: Buffer): string | undefined {
  if (key.length < 4) return undefined;
  const len = key.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > key.length) return undefined;
  return key.toString('latin1', 4, 4 + len);
}

export interface HostKeys {
  /** Keys accepted for the host (no marker). */
  accepted: KnownHostLine[];
  /** Keys revoked anywhere in the file (`@revoked`, whatever the host field). */
  revoked: KnownHostLine[];
}

/** The entries of `lines` that apply to host:port. */
export function hostKeysFor(lines: readonly KnownHostLine[], host: string, port: number): HostKeys {
  const name = knownHostName(host, port);
  return {
    accepted: lines.filter((l) => l.marker === undefined && hostFieldMatches(l.hosts, name)),
    revoked: lines.filter((l) => l.marker === 'revoked' && hostFieldMatches(l.hosts, name)),
  };
}

export type HostKeyVerdict =
  | { ok: true; line: number }
  | { ok: false; reason: 'unknown' | 'mismatch' | 'revoked'; message: string };

/**
 * Verifies the key a server presented (`key`: the SSH wire-format blob, as
 * ssh2's hostVerifier receives it) for host:port against known_hosts.
 * 'unknown': the file has no key for that name; 'mismatch': it has others.
 */
export function verifyHostKey(lines: readonly KnownHostLine[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostName(host, port);
  const { accepted, revoked } = hostKeysFor(lines, host, port);
  const fp = keyFingerprint(key);
  if (revoked.some((l) => l.key.equals(key))) {
    return { ok: false, reason: 'revoked', message: `host key ${fp} of ${name} is marked @revoked in known_hosts` };
  }
  const hit = accepted.find((l) => l.key.equals(key));
  if (hit) return { ok: true, line: hit.line };
  if (accepted.length === 0) {
    return { ok: false, reason: 'unknown', message: `no host key for ${name} in known_hosts (it presented ${blobKeyType(key) ?? 'a key'} ${fp})` };
  }
  return {
    ok: false,
    reason: 'mismatch',
    message: `HOST KEY MISMATCH for ${name}: it presented ${blobKeyType(key) ?? 'a key'} ${fp}, which is not the key in known_hosts (line ${accepted.map((l) => l.line).join(', ')})`,
  };
}

/**
 * Host key algorithms to offer for the key types known for a host (like
 * OpenSSH, so the server signs with a key we can check). Empty when none of
 * the known types is one ssh2 speaks.
 */
export function hostKeyAlgorithms(types: Iterable<string>): string[] {
  const out: string[] = [];
  for (const type of types) {
    const algs =
      type === 'ssh-rsa'
        ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']
        : ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-dss'].includes(type)
          ? [type]
          : [];
    for (const a of algs) if (!out.includes(a)) out.push(a);
  }
  return out;
}
