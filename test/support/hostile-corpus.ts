/**
 * The hostile-input corpus (test/fixtures/hostile/README.md), as bytes. Used
 * by the parser tests (test/protocol/fuzz-corpus.test.ts) and by the front-end
 * tests that send it raw to a running githa (test/integration/limits.test.ts).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DIR = fileURLToPath(new URL('../fixtures/hostile/', import.meta.url));

function load<T>(file: string): T[] {
  return JSON.parse(readFileSync(`${DIR}${file}`, 'utf8')) as T[];
}

/** Latin-1: one JSON character per byte. */
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

export interface NameCase {
  name: string;
  error: string;
  message: RegExp;
}
export interface BytesCase {
  what: string;
  bytes: Buffer;
  error: string;
  message: RegExp;
}
export interface PacketsCase {
  what: string;
  /** Payloads; null is a flush-pkt, 'delim' a delim-pkt. */
  packets: Array<string | null>;
  error: string;
  message: RegExp;
}
export interface HttpCase {
  what: string;
  /** The raw request for a repository path ("team/app.git"). */
  request(repo: string): Buffer;
  status: number;
  message: RegExp;
}

/** Repository names; `name` is a JS string (UTF-16), as a transport would decode it. */
export const repositoryNames: NameCase[] = load<{ name: string; error: string; message: string }>('repository-names.json').map((c) => ({
  ...c,
  message: new RegExp(c.message),
}));

export const pktLines: BytesCase[] = load<{ what: string; bytes: string; pad?: number; error: string; message: string }>('pkt-lines.json').map((c) => ({
  what: c.what,
  bytes: Buffer.concat([bytes(c.bytes), Buffer.alloc(c.pad ?? 0, 0x61)]),
  error: c.error,
  message: new RegExp(c.message),
}));

export const receivePack: PacketsCase[] = load<{ what: string; packets: Array<string | null>; error: string; message: string }>('receive-pack.json').map((c) => ({
  ...c,
  message: new RegExp(c.message),
}));

export const gitDaemonRequests: BytesCase[] = load<{ what: string; payload: string; error: string; message: string }>('git-daemon-requests.json').map((c) => ({
  what: c.what,
  bytes: bytes(c.payload),
  error: c.error,
  message: new RegExp(c.message),
}));

export const httpRequests: HttpCase[] = load<{ what: string; request: string; pad?: number; status: number; message: string }>('http-requests.json').map((c) => ({
  what: c.what,
  request: (repo) => bytes(c.request.replaceAll('{repo}', repo).replace('{pad}', 'a'.repeat(c.pad ?? 0))),
  status: c.status,
  message: new RegExp(c.message),
}));

/** One pkt-line (gitprotocol-common), without the encoder under test. */
export function pkt(payload: string | Buffer): Buffer {
  const b = typeof payload === 'string' ? bytes(payload) : payload;
  return Buffer.concat([bytes((b.length + 4).toString(16).padStart(4, '0')), b]);
}

/** A corpus packet list as bytes. */
export function packetBytes(packets: Array<string | null>): Buffer {
  return Buffer.concat(packets.map((p) => (p === null ? bytes('0000') : p === 'delim' ? bytes('0001') : pkt(p))));
}

/** A repository name as an HTTP path: bytes outside the unreserved set are percent-encoded (UTF-8), "/" stays. */
export function urlPath(name: string): string {
  return Array.from(Buffer.from(name, 'utf8'), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9._~\-/+@]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}
