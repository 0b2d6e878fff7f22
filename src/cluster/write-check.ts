import type { RefTip } from '../backends/types.js';
import { isZeroOid, type RefCommand } from '../protocol/receive-pack-request.js';
import { refsChecksum } from './checksum.js';

/*
 * Writes are checked against the record (docs/architecture.md "Verified
 * copies"): a copy that took a push must hold, outside the push's own
 * commands, exactly the refs the record says it held before. Undoing the
 * commands that landed from its live listing must give the recorded pre-push
 * checksum; anything else means the copy was off its record when the push
 * landed (a ref rolled back by a crash, a restore), and its listing is never
 * committed, adopted or spread as the new version.
 */

/**
 * The listing as it was before `commands`: each command that landed (its ref
 * is at its new id, or gone for a delete) is undone — the ref goes back to its
 * old id, or is removed when the old id is the zero id. A command that did not
 * land is left as it is; a ref that moved elsewhere stays and shows in the checksum.
 * A symbolic ref besides HEAD (`refs/heads/master` -> `refs/heads/main`, where
 * the backend named its target) is listed with its target's id: it follows
 * its target back, and is not listed when the target was not there.
 */
export function undoCommands(refs: readonly RefTip[], commands: readonly RefCommand[]): RefTip[] {
  const byName = new Map(refs.filter((r) => r.name !== 'HEAD').map((r) => [r.name, r.oid]));
  const undone = new Set<string>();
  for (const c of commands) {
    const now = byName.get(c.ref);
    const landed = isZeroOid(c.newOid) ? now === undefined : now === c.newOid;
    if (!landed) continue;
    undone.add(c.ref);
    if (isZeroOid(c.oldOid)) byName.delete(c.ref);
    else byName.set(c.ref, c.oldOid);
  }
  for (const r of refs) {
    if (r.name === 'HEAD' || r.symrefTarget === undefined || !undone.has(r.symrefTarget) || undone.has(r.name)) continue;
    const target = byName.get(r.symrefTarget);
    if (target === undefined) byName.delete(r.name);
    else byName.set(r.name, target);
  }
  return [...byName].map(([name, oid]) => ({ name, oid }));
}

/** The checksum of the listing with `commands` undone: compared with the recorded pre-write checksum. */
export function checksumBefore(refs: readonly RefTip[], commands: readonly RefCommand[]): string {
  return refsChecksum(undoCommands(refs, commands));
}

/**
 * Whether every command the backend reported `ok` shows in its listing (the
 * ref at its new id, or gone for a delete). A reported update the listing
 * lacks was lost after it was made (a crash, a restore, a ref rolled back
 * while githa listed): the copy holds neither the record nor the push, and
 * the push is never acknowledged from it.
 */
export function allLanded(refs: readonly RefTip[], commands: readonly RefCommand[]): boolean {
  const byName = new Map(refs.filter((r) => r.name !== 'HEAD').map((r) => [r.name, r.oid]));
  return commands.every((c) => (isZeroOid(c.newOid) ? !byName.has(c.ref) : byName.get(c.ref) === c.newOid));
}
