/**
 * The consistency checker of the chaos harness (issue 8, docs/chaos.md):
 * pure functions over a recorded History, no I/O.
 *
 * A push answered `ok` is an obligation; a push with any other result except
 * `rejected` may or may not have been applied, so it can explain what a read
 * saw but obliges nothing. Commit ids are unique per created commit and the
 * history knows every commit's parent, so "contains" is ancestry.
 *
 * A value that does not contain an acknowledged push must be explained by a
 * destructive push (force or delete; any result but `rejected`) that could be
 * ordered after it: it started before the observation and was not
 * acknowledged before the acknowledged push started (a push answered with an
 * error may take effect later, when githa resolves the interrupted write). Fast-forward pushes never explain a
 * missing commit: a backend applies one only on top of the current value.
 * Branches that are never force-pushed or deleted are thus checked exactly.
 */
import type { FinalState, History, Op, PushOp, ReadOp } from './history.js';

export type ViolationKind =
  | 'acked-push-lost'
  | 'stale-read'
  | 'read-went-backwards'
  | 'read-older-version'
  | 'uncommitted-read-reverted'
  | 'phantom-value'
  | 'version-decreased'
  | 'not-converged'
  | 'refs-differ'
  | 'fsck-failed'
  | 'frozen'
  | 'marker-left';

export interface Violation {
  readonly kind: ViolationKind;
  readonly message: string;
  readonly repo?: string;
  readonly branch?: string;
  /** Ids of the operations involved (for the minimal history). */
  readonly ops: readonly number[];
  /** Time window of interest, for printing the history around it. */
  readonly window?: readonly [number, number];
}

/** Ancestry over the recorded commit graph (single parents: clients only make such commits). */
export class Commits {
  constructor(private readonly parents: Readonly<Record<string, string | null>>) {}

  known(oid: string): boolean {
    return Object.hasOwn(this.parents, oid);
  }

  /** `oid` and all its ancestors (bounded by the graph's size). */
  lineage(oid: string): Set<string> {
    const seen = new Set<string>();
    let cur: string | null | undefined = oid;
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      cur = this.parents[cur];
    }
    return seen;
  }

  contains(tip: string | undefined, oid: string): boolean {
    return tip !== undefined && this.lineage(tip).has(oid);
  }
}

const key = (repo: string, branch: string): string => `${repo}\u0000${branch}`;

/** Pushes that may have applied, per (repo, branch). */
interface Index {
  pushes: Map<string, PushOp[]>;
}

function index(ops: readonly Op[]): Index {
  const pushes = new Map<string, PushOp[]>();
  for (const op of ops) {
    if (op.kind !== 'push' || op.result === 'rejected') continue;
    const k = key(op.repo, op.branch);
    let list = pushes.get(k);
    if (!list) pushes.set(k, (list = []));
    list.push(op);
  }
  for (const list of pushes.values()) list.sort((a, b) => a.end - b.end);
  return { pushes };
}

/**
 * Whether the value `seen` of a branch (undefined = absent) is consistent
 * with the acknowledged push `p`, for an observation made no earlier than
 * `observedBy` (a read's end, or the end of the run): it contains p's commit
 * (or, for a delete, the branch is absent), or another push that could be
 * ordered after p (it did not end before p started, and started before the
 * observation) explains it.
 */
function explains(idx: Index, commits: Commits, p: PushOp, seen: string | undefined, lineage: Set<string> | undefined, observedBy: number): boolean {
  if (p.newOid !== null ? seen !== undefined && (lineage ?? commits.lineage(seen)).has(p.newOid) : seen === undefined) return true;
  for (const d of idx.pushes.get(key(p.repo, p.branch)) ?? []) {
    if (d === p || effectiveEnd(d) <= p.start || d.start >= observedBy) continue;
    if (seen === undefined) {
      if (d.mode === 'delete') return true;
    } else if (d.mode === 'force' && d.newOid !== null && (lineage ?? commits.lineage(seen)).has(d.newOid)) {
      // The value descends from a force-push that may be later than p. (A
      // fast-forward push cannot explain it: the backend applies one only on
      // top of the current value, which after p contains p's commit.)
      return true;
    }
  }
  return false;
}

/**
 * By when a push took effect, if it did. An acknowledged push: before its
 * answer. Any other outcome: possibly much later (a write interrupted by a
 * fault is adopted when githa resolves it, after the client got its error).
 */
function effectiveEnd(d: PushOp): number {
  return d.result === 'ok' ? d.end : Number.POSITIVE_INFINITY;
}

function window(...ops: Op[]): [number, number] {
  return [Math.min(...ops.map((o) => o.start)), Math.max(...ops.map((o) => o.end))];
}

/** Every acknowledged push is in the final state (unless a push that may be later removed it). */
export function checkAckedInFinal(history: History): Violation[] {
  const final = history.final;
  if (!final) return [];
  const idx = index(history.ops);
  const commits = new Commits(history.commits);
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

/** Every read that started after a push was acknowledged sees that push or a later state. */
export function checkReadsAfterAcks(history: History): Violation[] {
  const idx = index(history.ops);
  const commits = new Commits(history.commits);
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
  const commits = new Commits(history.commits);
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

/**
 * Anomalies githa is known to show today, reported apart from violations
 * (docs/chaos.md, "Known issues"). `uncommitted-read-reverted`: a read can
 * see a push before it is committed, and the same client's next read, routed
 * to another leader, misses it until the commit. Two ways: a read routed to
 * the write's target *before* the marker was written (repoFlags in
 * src/cluster/cluster.ts avoids the marker's backend only at routing time)
 * but served after the push landed (seen with that backend paused, the read
 * and the push queued on it); and write-quorum copies (src/cluster/write.ts,
 * quorumCopies) landing on leaders that still serve reads at the old version.
 * No acknowledged push is lost and no read after an acknowledgement misses
 * it; only monotonic reads break, in the window before the commit.
 */
export const KNOWN_ISSUES: ReadonlySet<ViolationKind> = new Set<ViolationKind>(['uncommitted-read-reverted']);

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

/** After healing: converged, identical refs, fsck clean, equal versions, nothing frozen without reason. */
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
    }
    const justified = final.justifiedFrozen?.[repo];
    if (s.frozen !== null && justified !== s.frozen) {
      out.push({ kind: 'frozen', repo, ops: [], message: `${repo} is left frozen (${s.frozen})${justified ? `, but the harness expected ${justified}` : ' and the harness caused nothing ambiguous'}` });
    }
    if (s.writing) out.push({ kind: 'marker-left', repo, ops: [], message: `${repo}: a write marker is left after quiescence` });
  }
  return out;
}

export function checkHistory(history: History): Violation[] {
  const monotonic = checkMonotonicReads(history);
  const pair = (v: Violation): string => `${v.ops[1]}\u0000${v.branch}`;
  const reported = new Set(monotonic.map(pair));
  return [
    ...checkAckedInFinal(history),
    ...checkReadsAfterAcks(history),
    ...monotonic,
    ...checkReadPositions(history).filter((v) => !reported.has(pair(v))),
    ...checkVersions(history),
    ...checkFinal(history.final),
  ];
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

/**
 * The operations around a violation: those on its repository (and branch,
 * when it names one) overlapping its time window widened by `marginMs`, plus
 * the ones it names, and the faults overlapping it. At most `max` lines.
 */
export function historyAround(history: History, v: Violation, marginMs = 2_000, max = 40): string[] {
  const [from, to] = v.window ?? [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY];
  const lo = from - marginMs;
  const hi = to + marginMs;
  const named = new Set(v.ops);
  const ops = history.ops
    .filter((o) => named.has(o.id) || ((v.repo === undefined || o.repo === v.repo) && o.end >= lo && o.start <= hi && (v.branch === undefined || o.kind === 'read' || o.branch === v.branch)))
    .sort((a, b) => a.start - b.start);
  const lines = ops.map((o) => `${named.has(o.id) ? '>>' : '  '} ${describeOp(o, v.branch)}`);
  const faults = history.faults.filter((f) => f.end >= lo && f.start <= hi).map((f) => `   fault ${f.kind} ${f.target} ${f.start}–${f.end} ms${f.detail ? ` (${f.detail})` : ''}`);
  const all = [...faults, ...lines];
  return all.length > max ? [...all.slice(0, max - 1), `   … ${all.length - max + 1} more`] : all;
}

export function describeOp(o: Op, branch?: string): string {
  const t = `${o.start.toFixed(0)}–${o.end.toFixed(0)} ms`;
  if (o.kind === 'push') {
    return `#${o.id} ${t} ${o.client} push ${o.mode} ${o.repo} ${o.branch} → ${o.newOid?.slice(0, 10) ?? 'deleted'} via ${o.via}: ${o.result}${o.detail ? ` (${o.detail.slice(0, 120)})` : ''}`;
  }
  const refs = branch !== undefined ? `${branch}=${o.refs[branch]?.slice(0, 10) ?? 'absent'}` : `${Object.keys(o.refs).length} branches`;
  return `#${o.id} ${t} ${o.client} ${o.how} ${o.repo} via ${o.via}: ${o.result} ${o.result === 'ok' ? refs : (o.detail ?? '').slice(0, 120)}`;
}
