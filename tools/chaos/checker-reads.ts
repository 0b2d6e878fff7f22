/**
 * The checker's rules about reads (docs/chaos.md): reads after an
 * acknowledgement, monotonic reads, and reads of a copy a fault changed.
 */
import { commitGraph, effectiveEnd, explains, index, key, window, type Violation } from './checker-base.js';
import type { History, PushOp, ReadOp } from './history.js';

/** Every read that started after a push was acknowledged sees that push or a later state. */
export function checkReadsAfterAcks(history: History): Violation[] {
  const idx = index(history.ops);
  const commits = commitGraph(history);
  const acked = history.ops.filter((o): o is PushOp => o.kind === 'push' && o.result === 'ok').sort((a, b) => a.end - b.end);
  const out: Violation[] = [];
  for (const r of history.ops) {
    if (r.kind !== 'read' || r.result !== 'ok') continue;
    const lineages = new Map<string, Set<string>>();
    for (const p of acked) {
      if (p.end >= r.start) break;
      if (p.repo !== r.repo) continue;
      const seen = r.refs[p.branch];
      let lineage: Set<string> | undefined;
      if (seen !== undefined) {
        lineage = lineages.get(seen);
        if (!lineage) lineages.set(seen, (lineage = commits.lineage(seen)));
      }
      if (!explains(idx, commits, p, seen, lineage, r.end)) {
        out.push({
          kind: 'stale-read',
          repo: r.repo,
          branch: p.branch,
          ops: [p.id, r.id],
          window: window(p, r),
          message: `read #${r.id} (${r.how} via ${r.via}, started ${r.start} ms) saw ${p.branch} = ${seen ?? 'absent'}, missing push #${p.id} (→ ${p.newOid ?? 'deleted'}) acknowledged at ${p.end} ms`,
        });
      }
    }
  }
  return out;
}

/** A client's successive reads never go backwards; every value read is a commit some client pushed. */
export function checkMonotonicReads(history: History): Violation[] {
  const idx = index(history.ops);
  const commits = commitGraph(history);
  const out: Violation[] = [];
  const last = new Map<string, ReadOp>();
  const reads = history.ops.filter((o): o is ReadOp => o.kind === 'read' && o.result === 'ok').sort((a, b) => a.start - b.start);
  for (const r of reads) {
    for (const [branch, oid] of Object.entries(r.refs)) {
      if (!commits.known(oid)) {
        out.push({ kind: 'phantom-value', repo: r.repo, branch, ops: [r.id], window: [r.start, r.end], message: `read #${r.id} saw ${branch} = ${oid}, a commit no client created` });
      }
    }
    const k = `${r.client}\u0000${r.repo}`;
    const prev = last.get(k);
    last.set(k, r);
    if (!prev) continue;
    for (const [branch, before] of Object.entries(prev.refs)) {
      const now = r.refs[branch];
      if (now !== undefined && commits.contains(now, before)) continue;
      // Explained when a push that may be later than what `prev` saw (it did not end before prev started) set it.
      const later = (idx.pushes.get(key(r.repo, branch)) ?? []).some(
        (d) => effectiveEnd(d) > prev.start && d.start < r.end && (now === undefined ? d.mode === 'delete' : d.mode === 'force' && d.newOid !== null && commits.contains(now, d.newOid)),
      );
      if (later) continue;
      // The earlier read saw a push before it was acknowledged (a quorum copy
      // landed on a backend that still serves reads at the old version), and
      // the later read came before the acknowledgement: see KNOWN_ISSUES.
      const dirty = (idx.pushes.get(key(r.repo, branch)) ?? []).find((d) => d.newOid === before && effectiveEnd(d) > prev.end && r.start < effectiveEnd(d));
      out.push({
        kind: dirty ? 'uncommitted-read-reverted' : 'read-went-backwards',
        repo: r.repo,
        branch,
        ops: dirty ? [prev.id, r.id, dirty.id] : [prev.id, r.id],
        window: window(prev, r),
        message:
          `client ${r.client}: read #${prev.id} saw ${branch} = ${before}, the next read #${r.id} (via ${r.via}) saw ${now ?? 'absent'}` +
          (dirty ? ` (#${prev.id} saw push #${dirty.id} before it was acknowledged)` : ''),
      });
    }
  }
  return out;
}

/**
 * Monotonic reads by history position: per client, repository and branch, no
 * read returns a value older than one the client already saw. A value is the
 * commit of its own push(es) (commits are unique), so a value whose pushes all
 * took effect before any push of a value already seen started can never be
 * current again. Unlike checkMonotonicReads this compares with everything
 * seen before, and a force-push of an ancestor explains nothing.
 */
export function checkReadPositions(history: History): Violation[] {
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  const acked = new Map<string, number>();
  for (const p of history.ops) {
    if (p.kind !== 'push' || p.result === 'rejected' || p.newOid === null) continue;
    first.set(p.newOid, Math.min(first.get(p.newOid) ?? Infinity, p.start));
    last.set(p.newOid, Math.max(last.get(p.newOid) ?? -Infinity, effectiveEnd(p)));
    acked.set(p.newOid, Math.min(acked.get(p.newOid) ?? Infinity, effectiveEnd(p)));
  }
  const newest = new Map<string, { oid: string; read: ReadOp }>();
  const out: Violation[] = [];
  const reads = history.ops.filter((o): o is ReadOp => o.kind === 'read' && o.result === 'ok').sort((a, b) => a.start - b.start);
  for (const r of reads) {
    for (const [branch, oid] of Object.entries(r.refs)) {
      const k = `${r.client}\u0000${r.repo}\u0000${branch}`;
      const seen = newest.get(k);
      const at = first.get(oid) ?? -Infinity;
      if (!seen || at > (first.get(seen.oid) ?? -Infinity)) newest.set(k, { oid, read: r });
      if (!seen || seen.oid === oid || (last.get(oid) ?? Infinity) > (first.get(seen.oid) ?? -Infinity)) continue;
      // Seen before it was acknowledged, and read again before that: the known issue below.
      const dirty = (acked.get(seen.oid) ?? Infinity) > seen.read.end && r.start < (acked.get(seen.oid) ?? Infinity);
      out.push({
        kind: dirty ? 'uncommitted-read-reverted' : 'read-older-version',
        repo: r.repo,
        branch,
        ops: [seen.read.id, r.id],
        window: window(seen.read, r),
        message: `client ${r.client}: read #${seen.read.id} saw ${branch} = ${seen.oid}; the later read #${r.id} (via ${r.via}) saw ${oid}, set by a push that took effect before ${seen.oid} was pushed`,
      });
    }
  }
  return out;
}

