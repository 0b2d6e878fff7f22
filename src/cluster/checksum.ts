import { createHash } from 'node:crypto';
import type { RefTip } from '../backends/types.js';

/**
 * The checksum of one backend's copy (docs/redis.md "Versions and leaders"): SHA-256 of the
 * sorted "<oid> <refname>\n" lines of every ref except HEAD, no peeled lines.
 * Sorted by the ref name's bytes, so every githa computes the same value.
 */
export function refsChecksum(refs: Iterable<RefTip>): string {
  const lines = [...refs]
    .filter((r) => r.name !== 'HEAD')
    .map((r) => ({ key: Buffer.from(r.name, 'utf8'), line: `${r.oid} ${r.name}\n` }))
    .sort((a, b) => Buffer.compare(a.key, b.key));
  const hash = createHash('sha256');
  for (const { line } of lines) hash.update(line, 'utf8');
  return hash.digest('hex');
}

/** The checksum of a repository without refs. */
export const EMPTY_CHECKSUM = refsChecksum([]);
