import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { WatchedFile } from '../../config/watched-file.js';

export interface AuthorizedKey {
  /** The user this key belongs to: the push log records it. */
  user: string;
  key: ParsedKey;
  /** The key's wire form (algorithm + public data), for comparison. */
  blob: Buffer;
  fingerprint: string;
}

/**
 * Parses an OpenSSH authorized_keys file. The user behind a key is, in order:
 * an `environment="GITHA_USER=<name>"` option, else the key's comment (the
 * part before an `@`), else the key's SHA-256 fingerprint. Lines that do not
 * parse are returned as problems, not thrown: one bad line must not lock
 * everybody out.
 *
 * A comment is whatever ssh-keygen wrote (`root@laptop`): it never names a
 * user in `reserved` (the names access rules and auth.groups grant something
 * to, docs/security.md "SSH keys and user names"). Such a key is its
 * fingerprint instead, and the line is reported: only GITHA_USER grants a
 * name that carries access.
 */
export function parseAuthorizedKeys(text: string, reserved: ReadonlySet<string> = new Set()): { keys: AuthorizedKey[]; problems: string[] } {
  const keys: AuthorizedKey[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^(?:(.*?)\s+)?((?:ssh|ecdsa|sk)-[\w@.-]+)\s+([A-Za-z0-9+/=]+)(?:\s+(.*))?$/.exec(line);
    if (!m) {
      problems.push(`line ${i + 1}: not an authorized key`);
      return;
    }
    const [, options = '', type, data, comment = ''] = m;
    const parsed = ssh2.utils.parseKey(`${type} ${data}`);
    if (parsed instanceof Error) {
      problems.push(`line ${i + 1}: ${parsed.message}`);
      return;
    }
    const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
    const blob = key.getPublicSSH();
    const fingerprint = fingerprintOf(blob);
    const fromOption = /environment="GITHA_USER=([^"]+)"/.exec(options)?.[1];
    const valid = (u: string | undefined): u is string => u !== undefined && /^[\w.+-]{1,64}$/.test(u);
    let fromComment = comment.split(/\s/)[0]?.split('@')[0];
    if (!valid(fromOption) && valid(fromComment) && reserved.has(fromComment)) {
      problems.push(`line ${i + 1}: the comment names ${fromComment}, whom access rules or auth.groups name; a key gets that name only from environment="GITHA_USER=${fromComment}" (this key is ${fingerprint})`);
      fromComment = undefined;
    }
    const user = [fromOption, fromComment].find(valid) ?? fingerprint;
    keys.push({ user, key, blob, fingerprint });
  });
  return { keys, problems };
}

/** OpenSSH's SHA-256 fingerprint of a key's wire form: `SHA256:<base64 without padding>`. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The authorized keys file, re-read whenever its modification time, size or
 * inode changes: an edit in place and a new file renamed over the old one
 * (how editors and configuration management replace files) are both seen by
 * the next authentication attempt. A file that cannot be read holds no keys.
 */
export class AuthorizedKeysFile {
  private readonly file: WatchedFile<AuthorizedKey[]>;

  constructor(path: string, onProblem: (message: string) => void, reserved: ReadonlySet<string> = new Set()) {
    this.file = new WatchedFile(
      path,
      (text) => {
        const { keys, problems } = parseAuthorizedKeys(text, reserved);
        return { value: keys, problems };
      },
      [],
      onProblem,
    );
  }

  /** The entry for a key the client offered, or undefined. */
  find(algo: string, data: Buffer): AuthorizedKey | undefined {
    const keys = this.file.get();
    return keys.find((k) => k.blob.equals(data) && k.key.type === algo) ?? keys.find((k) => k.blob.equals(data));
  }
}
