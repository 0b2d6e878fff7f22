import { createHash } from 'node:crypto';
import type { RefTip } from '../backends/types.js';

/** A UTF-16 surrogate: a code point above U+FFFF, where UTF-16 order and UTF-8 byte order part. */
const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * The checksum of one backend's copy (docs/redis.md "Versions and leaders"): SHA-256 of the
 * sorted "<oid> <refname>\n" lines of every ref except HEAD, no peeled lines.
 * Sorted by the ref name's bytes, so every githa computes the same value.
 */
export function refsChecksum(refs: Iterable<RefTip>): string {
  const tips = [...refs].filter((r) => r.name !== 'HEAD');
  // Strings without surrogates compare in code point order, which is UTF-8 byte order: no bytes needed.
  // (A listing arrives sorted already, so the sort is one pass; hashing one string beats one update per line.)
  if (tips.some((r) => SURROGATE.test(r.name))) {
    const keyed = tips.map((r) => ({ key: Buffer.from(r.name, 'utf8'), r })).sort((a, b) => Buffer.compare(a.key, b.key));
    return digest(keyed.map(({ r }) => r));
  }
  return digest(tips.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
}

function digest(sorted: readonly RefTip[]): string {
  let text = '';
  for (const r of sorted) text += `${r.oid} ${r.name}\n`;
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The checksum of a repository without refs. */
export const EMPTY_CHECKSUM = refsChecksum([]);
