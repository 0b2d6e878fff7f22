import { setTimeout as sleep } from 'node:timers/promises';
import { BackendUnavailableError, QuorumNotReachedError } from '../errors.js';
import type { RefTip } from '../backends/types.js';
import type { HeldLock } from '../state/lock.js';
import type { RepoState } from '../state/store.js';
import { copyRepository } from './catch-up.js';
import { refsChecksum } from './checksum.js';
import type { Backend, Cluster, ForwardResult, WriteOutcome, WriteRequest } from './cluster.js';
import { quorumNotReached } from './messages.js';
import { leadership } from './routing.js';

export interface FinishInput {
  req: WriteRequest;
  lock: HeldLock;
  writeId: string;
  target: Backend;
  preChecksum: string;
  started: number;
  result: ForwardResult;
  /** The state read under the lock before the push. */
  state: RepoState;
}

type Release = () => Promise<void>;

/** How often a quorum copy retries a pair another githa is copying right now. */
const BUSY_RETRY_MS = 50;

/**
 * Ends a push whose bytes went to `target` (design: "Write path" 6): decide
 * from the report whether refs changed; if so read the target's refs, copy
 * them to writeQuorum − 1 other backends, and commit all of them at max + 1
 * in one guarded script. Only then may the caller release the client's
 * final bytes: an acknowledged push is on writeQuorum backends.
 */
export async function finishWrite(cluster: Cluster, f: FinishInput): Promise<WriteOutcome> {
  const { req, lock, writeId, target, preChecksum, started, result } = f;
  const { repo } = req;
  const { store, log } = cluster;
  const updated = result.report?.unpackOk ? result.report.refs.filter((r) => r.ok) : [];
  if (result.noop || (result.ending === 'complete' && result.report && updated.length === 0)) {
    await store.abortWrite(repo, lock.token, writeId);
    return { kind: 'unchanged', backend: target.id };
  }
  if (result.ending === 'unknown') return { kind: 'interrupted', backend: target.id };
  // Either the report names updated refs, or the pack was cut (then the refs
  // must be unchanged: verify rather than trust).
  const refs = await cluster.client(target.id).listRefs(repo);
  if (!refs) return { kind: 'interrupted', backend: target.id };
  const checksum = refsChecksum(refs);
  if (result.ending === 'cut' && checksum === preChecksum) {
    await store.abortWrite(repo, lock.token, writeId);
    return { kind: 'unchanged', backend: target.id };
  }

  const quorum = cluster.config.replication.writeQuorum;
  const copies = quorumCopies(cluster, f, refs, checksum, quorum - 1);
  const made = await copies.settled;
  const okRefs = new Set(updated.map((r) => r.ref));
  const commands = result.commands ?? req.commands ?? [];
  const lines = commands.filter((c) => okRefs.size === 0 || okRefs.has(c.ref)).slice(0, 200);
  // The copies keep their pair locks until recorded (CopyRequest.hold): a
  // catch-up planned from older state cannot turn them back meanwhile.
  let version: number;
  try {
    version = await store.commitWrite(repo, lock.token, writeId, target.id, checksum, made, {
      event: 'push',
      user: req.user,
      transport: req.transport,
      proxy: cluster.config.proxyId,
      refs: lines.map((c) => `${c.oldOid} ${c.newOid} ${c.ref}`).join('\n'),
      bytes: result.bytes ?? 0,
      durationMs: Date.now() - started,
    });
  } catch (err) {
    // Nothing recorded: copies made now or later are just released.
    copies.late((_backend, release) => void release());
    throw err;
  } finally {
    await copies.releaseMade();
  }
  log.info({ repo, backend: target.id, copies: made, version, refs: okRefs.size }, 'push committed');
  store.noteWrite(repo, target.id, version).catch(() => {});
  // Copies that finish after the commit are recorded as ordinary catch-ups.
  copies.late((backend, release) => {
    store
      .commitCatchUp(repo, backend, version, checksum, target.id, { quorum: 'late' })
      .then((status) => log.debug({ repo, backend, version, status }, 'late quorum copy'))
      .catch(() => {})
      .finally(() => void release());
  });
  if (made.length < quorum - 1) {
    log.error({ repo, backend: target.id, copies: made, quorum }, 'push recorded without its write quorum');
    throw new QuorumNotReachedError(quorumNotReached(repo, target.id, made, quorum));
  }
  return { kind: 'committed', version, backend: target.id };
}

/**
 * Copies the target's new state to every other enabled, healthy backend at
 * once (leaders first: their copy is just this push) and settles as soon as
 * `needed` copies are verified, or all failed, or replication.quorumTimeoutMs
 * passed. Drifted copies are never overwritten (the verifier reported them).
 */
function quorumCopies(
  cluster: Cluster,
  f: FinishInput,
  sourceRefs: readonly RefTip[],
  checksum: string,
  needed: number,
): { settled: Promise<string[]>; releaseMade(): Promise<void>; late(fn: (backend: string, release: Release) => void): void } {
  if (needed <= 0) return { settled: Promise.resolve([]), releaseMade: async () => {}, late: () => {} };
  const { repo } = f.req;
  const { max } = leadership(f.state.versions);
  const candidates = cluster
    .activeBackends()
    .filter((b) => b.id !== f.target.id && cluster.health.isHealthy(b.id) && !f.state.drift.has(b.id))
    .sort((a, b) => Number(f.state.versions.get(b.id) === max) - Number(f.state.versions.get(a.id) === max));
  // The version this push will be recorded at (the commit script's max + 1;
  // no other version can rise while the write lock is held). A late copy
  // still running after a later push reached its target must not undo it.
  const version = Math.max(0, ...f.state.versions.values()) + 1;
  const deadline = performance.now() + cluster.config.replication.quorumTimeoutMs;
  const made: string[] = [];
  let settledNow = false;
  const releases = new Map<string, Release>();
  // The refs read after the push stand for the source while the write lock
  // is held; a copy still running after the push returned reads them afresh.
  let underLock = true;
  let onLate: ((backend: string, release: Release) => void) | undefined;
  const lateDone: string[] = [];

  /** Whether the copy was made; its pair lock then stays held (in `releases`) until it is recorded. */
  const copyTo = async (backend: Backend): Promise<boolean> => {
    const source = cluster.client(f.target.id);
    const target = cluster.client(backend.id);
    while (performance.now() < deadline && !f.lock.signal.aborted) {
      try {
        const r = await copyRepository(cluster.store, { repo, source, target, checksum, sourceRefs: underLock ? sourceRefs : undefined, version, signal: f.lock.signal, pairLockMs: cluster.config.catchUp.pairLockMs, hold: true });
        if (r.status === 'copied') {
          releases.set(backend.id, r.release);
          cluster.observer.quorumCopy('copied');
          return true;
        }
        if (r.status === 'mismatch' || r.status === 'current') {
          cluster.observer.quorumCopy('mismatch');
          cluster.log.warn({ repo, backend: backend.id, reason: r.reason }, 'quorum copy did not match');
          return false;
        }
      } catch (err) {
        if (err instanceof BackendUnavailableError) cluster.health.markDown(err.backendId);
        cluster.log.warn({ repo, backend: backend.id, err: (err as Error).message }, 'quorum copy failed');
        cluster.observer.quorumCopy('failed');
        return false;
      }
      await sleep(BUSY_RETRY_MS);
    }
    cluster.observer.quorumCopy('timeout');
    return false;
  };

  const settled = new Promise<string[]>((resolve) => {
    let pending = candidates.length;
    const settle = (): void => {
      if (settledNow) return;
      settledNow = true;
      clearTimeout(timer);
      resolve([...made]);
    };
    const timer = setTimeout(settle, cluster.config.replication.quorumTimeoutMs);
    if (pending === 0) settle();
    for (const b of candidates) {
      copyTo(b).then((ok) => {
        pending--;
        if (ok && !settledNow) made.push(b.id);
        else if (ok) {
          if (onLate) onLate(b.id, releaseOf(b.id));
          else lateDone.push(b.id);
        }
        if (made.length >= needed || pending === 0) settle();
      }, () => {
        pending--;
        if (pending === 0) settle();
      });
    }
  });
  const releaseOf = (id: string): Release => {
    const release = releases.get(id) ?? (async () => {});
    releases.delete(id);
    return release;
  };
  return {
    settled,
    async releaseMade() {
      await Promise.all(made.map((id) => releaseOf(id)()));
    },
    late(fn) {
      underLock = false;
      onLate = fn;
      for (const b of lateDone.splice(0)) fn(b, releaseOf(b));
    },
  };
}
