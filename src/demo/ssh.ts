/** SSH helpers of the dev cluster: key generation, known_hosts, sshd detection. */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { run } from './process.js';

export const SSHD = '/usr/sbin/sshd';

/**
 * Generates an ed25519 key pair without passphrase; returns the public key
 * line. An existing pair is kept (`githa demo --dir` starts again on the same
 * directory, and clients keep trusting the same host keys).
 */
export async function generateKey(path: string, comment: string): Promise<string> {
  if (!(existsSync(path) && existsSync(`${path}.pub`))) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

/** One known_hosts line for a host key served on 127.0.0.1:port. */
export function knownHostsLine(port: number, publicKey: string): string {
  // Drop the comment: "<type> <base64>".
  const [type, key] = publicKey.trim().split(/\s+/);
  return `[127.0.0.1]:${port} ${type} ${key}`;
}

/**
 * sshd refuses to start as root without its privilege separation directory
 * (/run/sshd, normally created by systemd). Create it when we can.
 */
export function ensurePrivsepDir(): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  try {
    statSync('/run/sshd');
  } catch {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  }
}

let sshdVersion: Promise<[number, number]> | undefined;

/** OpenSSH version of /usr/sbin/sshd, e.g. [9, 2] (sshd prints it in its usage text). */
export function getSshdVersion(): Promise<[number, number]> {
  sshdVersion ??= new Promise((resolve) => {
    const child = spawn(SSHD, ['-V'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.once('error', () => resolve([0, 0]));
    child.once('close', () => {
      const match = /OpenSSH_(\d+)\.(\d+)/.exec(text);
      resolve(match ? [Number(match[1]), Number(match[2])] : [0, 0]);
    });
  });
  return sshdVersion;
}
