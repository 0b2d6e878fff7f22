import type { FreezeReason, FrozenState, WritingMarker } from '../state/store.js';

/**
 * The sentences an operator and a git user read when githa refuses, naming
 * the reason and the command that resolves it (design: "Failure modes").
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

export function frozenForWrite(repo: string, frozen: FrozenState): string {
  const remedy = (REMEDY[frozen.reason] ?? REMEDY.maintenance)(repo);
  const detail = frozen.detail ? ` (${frozen.detail})` : '';
  return `repository ${repo} is frozen: ${frozen.reason}${detail}; ${remedy}`;
}

export function interruptedWrite(repo: string, marker: WritingMarker): string {
  const when = new Date(marker.started).toISOString();
  return (
    `repository ${repo} is frozen for writes: a push by ${marker.user || 'unknown'} to backend ${marker.backend} ` +
    `via ${marker.proxy} (started ${when}) was interrupted and is not resolved; ` +
    `reads go on. ${REMEDY['write-interrupted'](repo)}`
  );
}
