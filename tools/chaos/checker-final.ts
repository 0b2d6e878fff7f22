/**
 * The checker's rules about the end of a run (docs/chaos.md): acknowledged
 * pushes in the final state, versions, convergence, and commits a fault added
 * behind githa's back kept somewhere.
 */
import { commitGraph, explains, index, type Violation } from './checker-base.js';
import type { FinalState, History } from './history.js';

/** Every acknowledged push is in the final state (unless a push that may be later removed it). */
export function checkAckedInFinal(history: History): Violation[] {
  const final = history.final;
  if (!final) return [];
  const idx = index(history.ops);
  const commits = commitGraph(history);
  const out: Violation[] = [];
  const end = Number.POSITIVE_INFINITY;
  for (const [repo, state] of Object.entries(final.repos)) {
    const first = Object.values(state.refs)[0] ?? '';
    const refs = parseForEachRef(first);
    for (const op of history.ops) {
      if (op.kind !== 'push' || op.repo !== repo || op.result !== 'ok') continue;
      const seen = refs[op.branch];
      if (!explains(idx, commits, op, seen, undefined, end)) {
        out.push({
          kind: 'acked-push-lost',
          repo,
          branch: op.branch,
          ops: [op.id],
          window: [op.start, op.end],
          message: `push #${op.id} (${op.mode} ${op.branch} → ${op.newOid ?? 'deleted'}, ok at ${op.end} ms via ${op.via}) is not in the final state (${op.branch} = ${seen ?? 'absent'})`,
        });
      }
    }
  }
  return out;
}

/** Redis versions never decreased (within one record epoch), per backend. */
export function checkVersions(history: History): Violation[] {
  const out: Violation[] = [];
  const last = new Map<string, { t: number; v: number; epoch: string }>();
  const samples = [...history.versionSamples].sort((a, b) => a.t - b.t);
  for (const s of samples) {
    for (const [backend, v] of Object.entries(s.versions)) {
      const k = `${s.repo}\u0000${backend}`;
      const prev = last.get(k);
      if (prev && prev.epoch === s.epoch && v < prev.v) {
        out.push({
          kind: 'version-decreased',
          repo: s.repo,
          ops: [],
          window: [prev.t, s.t],
          message: `${s.repo}: version of ${backend} went from ${prev.v} (at ${prev.t} ms) down to ${v} (at ${s.t} ms)`,
        });
      }
      last.set(k, { t: s.t, v, epoch: s.epoch });
    }
  }
  return out;
}

/**
 * After healing: converged, identical refs, fsck clean, equal versions, nothing frozen without reason.
 * Under a replication factor only the assigned copies count (the harness reads refs and fsck of those
 * only): their versions, and no other backend's, are recorded, and there are exactly `factor` of them.
 */
export function checkFinal(final: FinalState | undefined): Violation[] {
  if (!final) return [];
  const out: Violation[] = [];
  if (!final.converged) out.push({ kind: 'not-converged', ops: [], message: `the cluster did not reach quiescence within ${Math.round(final.convergenceMs)} ms of healing` });
  for (const [repo, s] of Object.entries(final.repos)) {
    const outputs = Object.entries(s.refs);
    const distinct = new Set(outputs.map(([, text]) => text));
    if (distinct.size > 1) {
      out.push({ kind: 'refs-differ', repo, ops: [], message: `${repo}: backends differ: ${outputs.map(([b, text]) => `${b}: ${summarize(text)}`).join('; ')}` });
    }
    for (const [backend, complaint] of Object.entries(s.fsck)) {
      if (complaint !== null) out.push({ kind: 'fsck-failed', repo, ops: [], message: `${repo} on ${backend}: git fsck failed: ${complaint}` });
    }
    const versions = new Set(Object.values(s.versions));
    if (versions.size !== 1 || Object.keys(s.versions).length !== outputs.length) {
      out.push({ kind: 'not-converged', repo, ops: [], message: `${repo}: versions not all equal after healing: ${JSON.stringify(s.versions)}` });
    } else if (s.assigned && Object.keys(s.versions).some((b) => !s.assigned!.includes(b))) {
      out.push({ kind: 'not-converged', repo, ops: [], message: `${repo}: versions recorded for backends not assigned (${s.assigned.join(', ')}): ${JSON.stringify(s.versions)}` });
    }
    if (final.factor !== undefined && s.assigned && s.assigned.length !== final.factor) {
      out.push({ kind: 'wrong-copies', repo, ops: [], message: `${repo}: assigned to ${s.assigned.length} backends (${s.assigned.join(', ')}), not replication.factor ${final.factor}` });
    }
    const justified = final.justifiedFrozen?.[repo];
    if (s.frozen !== null && justified !== s.frozen) {
      out.push({ kind: 'frozen', repo, ops: [], message: `${repo} is left frozen (${s.frozen})${justified ? `, but the harness expected ${justified}` : ' and the harness caused nothing ambiguous'}` });
    }
    if (s.writing) out.push({ kind: 'marker-left', repo, ops: [], message: `${repo}: a write marker is left after quiescence` });
  }
  return out;
}

/** `git for-each-ref` output → branch → oid (refs/heads only). */
export function parseForEachRef(text: string): Record<string, string> {
  const refs: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{40,64}) (?:commit )?refs\/heads\/(.+)$/.exec(line.trim());
    if (m) refs[m[2]!] = m[1]!;
  }
  return refs;
}

function summarize(text: string): string {
  const lines = text.trim().split('\n').filter(Boolean);
  return `${lines.length} refs`;
}

