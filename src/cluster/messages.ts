import type { FreezeReason, FrozenState, WritingMarker } from '../state/repo-state.js';

/**
 * The sentences an operator and a git user read when githa refuses, naming
 * the reason and the command that resolves it (docs/operations.md "Repository states").
 */

/** Reads go on while writes are frozen, except when githa cannot tell which copy is right. */
export function frozenForRead(reason: FreezeReason): boolean {
  return reason === 'leaders-lost' || reason === 'ambiguous';
}

const REMEDY: Record<FreezeReason, (repo: string) => string> = {
  'write-interrupted': (r) => `an operator can resolve it with: githa thaw ${r} --demote <backend>`,
  'leaders-lost': (r) => `bring a leader back, or accept the loss with: githa thaw ${r} --demote <backend>`,
  ambiguous: (r) => `an operator must choose the right copy with: githa thaw ${r} --promote <backend>`,
  maintenance: () => 'an operator is maintaining it; try again later',
};

/** The command (or wait) that resolves a freeze of `repo`. */
export function freezeRemedy(repo: string, reason: FreezeReason): string {
  return (REMEDY[reason] ?? REMEDY.maintenance)(repo);
}

export function frozenForWrite(repo: string, frozen: FrozenState): string {
  const remedy = freezeRemedy(repo, frozen.reason);
  const detail = frozen.detail ? ` (${frozen.detail})` : '';
  return `repository ${repo} is frozen: ${frozen.reason}${detail}; ${remedy}`;
}

export function interruptedWrite(repo: string, marker: WritingMarker): string {
  const when = new Date(marker.started).toISOString();
  return (
    `repository ${repo} is frozen for writes: a push by ${marker.user || 'unknown'} to backend ${marker.backend} ` +
    `via ${marker.proxy} (started ${when}) was interrupted and is not resolved yet; ` +
    `githa resolves it by itself once ${marker.backend} can be checked; reads go on. ` +
    `If ${marker.backend} is gone for good, an operator can discard the push with: githa thaw ${repo} --demote ${marker.backend}`
  );
}

/** No leader can serve: name them, and how an operator accepts their loss (docs/operations.md "No reachable leader"). */
export function leadersLost(repo: string, leaders: readonly string[]): string {
  if (leaders.length === 0) return `no backend holds a recorded version of ${repo}; an operator can rebuild the record with: githa recover ${repo}`;
  // Every leader was found holding other refs than its record (docs/architecture.md "Verified copies"): they are reachable,
  // and when they agree the record is what is stale (Redis restored or failed over, one change made on every host).
  if (leaders.every((l) => l.endsWith(' (drifted)'))) {
    return (
      `every leader of ${repo} holds other refs than its record (${leaders.join(', ')}), and none is served; ` +
      `if the copies are right (the record is stale: Redis restored or failed over, the same change made on every host), ` +
      `an operator rebuilds the record from them with: githa recover ${repo}`
    );
  }
  const first = leaders[0]!.split(' ')[0];
  return (
    `no leader of ${repo} is reachable (leaders: ${leaders.join(', ')}); reads and writes wait until one returns, ` +
    `or an operator accepts losing what only they hold with: githa thaw ${repo} --demote ${first}`
  );
}

/** The leaders speak none of this client's transport and the copies that do are being repaired (src/cluster/read-wait.ts). */
export function leadersElsewhere(repo: string, leaders: readonly string[], repairing: readonly string[]): string {
  return (
    `no leader of ${repo} can serve this transport (leaders: ${leaders.join(', ')}); the copies that can ` +
    `(${repairing.join(', ')}) are being repaired from them; try again`
  );
}

export function quorumUnavailable(repo: string, up: readonly string[], total: number, quorum: number): string {
  return (
    `writes to ${repo} are refused: ${up.length} of ${total} backends ${up.length === 1 ? 'is' : 'are'} up` +
    `${up.length > 0 ? ` (${up.join(', ')})` : ''} and replication.writeQuorum needs ${quorum}; reads go on`
  );
}

export function quorumNotReached(repo: string, target: string, copies: readonly string[], quorum: number): string {
  return (
    `the push to ${repo} reached ${[target, ...copies].join(', ')}, but replication.writeQuorum needs ${quorum} copies ` +
    `and only ${copies.length + 1} could be made in time; it is recorded and replication goes on, but githa cannot confirm it`
  );
}
