/**
 * What a held listing on SSH or git:// says of its copy (docs/architecture.md
 * "Verified copies", "SSH and git:// reads"): its checksum, or why it cannot
 * be read. Pure functions of the held bytes, memoized per identical listing
 * (src/cluster/verdict-memo.ts): an unchanged repository's listing is parsed
 * and checksummed once per change, not once per read.
 */
import { refsChecksum } from '../../cluster/checksum.js';
import type { LiveCopy } from '../../cluster/read-check.js';
import { LISTING_VERDICTS, MemoKind, type VerdictMemo } from '../../cluster/verdict-memo.js';
import { advertisedRefs, type HeldMessage, type ListedRef, lsRefsListing } from '../../protocol/held-listing.js';

/** A listing that does not parse is a failed answer (its copy is verified apart), never served. */
function liveOf(refs: () => ListedRef[]): LiveCopy {
  try {
    return { kind: 'refs', checksum: refsChecksum(refs()) };
  } catch (err) {
    return { kind: 'failed', detail: `listing: ${(err as Error).message}` };
  }
}

const ADVERTISEMENT = new MemoKind<LiveCopy>('stream-v0-advertisement');

/** A v0/v1 reference advertisement (the backend's first message, its flush included in `message.bytes`). */
export function advertisementLive(message: HeldMessage, memo: VerdictMemo = LISTING_VERDICTS): LiveCopy {
  return memo.get(ADVERTISEMENT, '', message.bytes, () => liveOf(() => advertisedRefs(message.pkts)));
}

/** A widened ls-refs answer: its copy, and (when it parsed) the bytes the client gets: the lines its prefixes select and the flush. */
export interface LsRefsSeen {
  live: LiveCopy;
  forward?: Buffer;
}

/** `forward: 'message'`: the forwarded bytes are the answer itself (no prefixes), not kept twice. */
type StoredLsRefs = { live: LiveCopy; forward?: Buffer | 'message' };
const LS_REFS = new MemoKind<StoredLsRefs>('stream-ls-refs', (v) => (Buffer.isBuffer(v.forward) ? v.forward.length : 0));

/** The answer to a widened ls-refs (src/protocol/ls-refs-widen.ts), for the client that sent `prefixes`. */
export function lsRefsLive(message: HeldMessage, prefixes: readonly string[], memo: VerdictMemo = LISTING_VERDICTS): LsRefsSeen {
  const seen = memo.get(LS_REFS, JSON.stringify(prefixes), message.bytes, (): StoredLsRefs => {
    let forward: Buffer | undefined;
    const live = liveOf(() => {
      const listing = lsRefsListing(message.pkts, prefixes);
      forward = listing.forward;
      return listing.refs;
    });
    if (live.kind !== 'refs' || forward === undefined) return { live };
    return { live, forward: forward.equals(message.bytes) ? 'message' : forward };
  });
  if (seen.forward === undefined) return { live: seen.live };
  return { live: seen.live, forward: seen.forward === 'message' ? message.bytes : seen.forward };
}
