/** Shared helpers of the protocol tests (not a test file itself). */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GithaError } from '../../src/errors.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/protocol/', import.meta.url));

/** Raw bytes of a golden fixture, e.g. fixture('v0-clone', 'response.bin'). */
export function fixture(dir: string, file: string): Buffer {
  return readFileSync(`${FIXTURES}${dir}/${file}`);
}

export interface Expected {
  gitVersion: string;
  source: Record<string, string>;
  push: Record<string, { old: string; new: string }>;
  pushDelete: Record<string, { old: string; new: string }>;
  pushOptions: { options: string[] } & Record<string, unknown>;
}

export const expected: Expected = JSON.parse(readFileSync(`${FIXTURES}expected.json`, 'utf8')) as Expected;

/** Splits a buffer into chunks at the given (sorted or not) cut points. */
export function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.max(0, Math.min(buf.length, c))))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    chunks.push(buf.subarray(last, p));
    last = p;
  }
  chunks.push(buf.subarray(last));
  return chunks;
}

/** Every single byte as its own chunk. */
export function bytewise(buf: Buffer): Buffer[] {
  return Array.from(buf, (_, i) => buf.subarray(i, i + 1));
}

/**
 * Checks a version-2 pack: "PACK", version, object count, and a SHA-1 trailer
 * over everything before it (so the length must be exactly right).
 */
export function checkPack(pack: Buffer): { objects: number } {
  if (pack.length < 32 || pack.toString('latin1', 0, 4) !== 'PACK') throw new Error('not a pack');
  const version = pack.readUInt32BE(4);
  if (version !== 2) throw new Error(`pack version ${version}`);
  const body = pack.subarray(0, pack.length - 20);
  const trailer = pack.subarray(pack.length - 20);
  const digest = createHash('sha1').update(body).digest();
  if (!digest.equals(trailer)) throw new Error('pack checksum mismatch (wrong length?)');
  return { objects: pack.readUInt32BE(8) };
}

/** Runs fn; passes if it returns or throws a GithaError; rethrows anything else. */
export function onlyGithaErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof GithaError) return;
    throw err;
  }
}
