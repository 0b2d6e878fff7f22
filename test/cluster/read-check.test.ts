import { describe, expect, it } from 'vitest';
import { EMPTY_CHECKSUM, refsChecksum } from '../../src/cluster/checksum.js';
import { ReadChecker, type LiveCopy } from '../../src/cluster/read-check.js';
import type { ReadRoute } from '../../src/cluster/types.js';
import { createLogger } from '../../src/log.js';
import type { RepoState } from '../../src/state/repo-state.js';
import type { RepositoryStore } from '../../src/state/repository-store.js';
import { MemoryStore } from '../support/memory-store.js';

/*
 * The read check's decisions (docs/architecture.md "Verified copies"), on the
 * in-memory RepositoryStore: a copy's answer that agrees costs no I/O; one that
 * does not is judged against a fresh read of the record.
 */

const R = 'team/app.git';
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);
const recorded = refsChecksum([{ name: 'refs/heads/main', oid: A }]);
const pushed = refsChecksum([{ name: 'refs/heads/main', oid: B }]);
const divergent = refsChecksum([{ name: 'refs/heads/main', oid: C }]);

/** MemoryStore with MARK_DRIFT's rules (src/state/scripts/repair.ts), counting the reads. */
class DriftStore extends MemoryStore {
  reads = 0;
  marks: Array<{ backend: string; live: string }> = [];

  override async read(repo: string): Promise<RepoState> {
    this.reads++;
    return super.read(repo);
  }

  /** What the ReadChecker is given: the reads, and MARK_DRIFT's rules. */
  readonly records: Pick<RepositoryStore, 'read' | 'markDrift'> = {
    read: (repo) => this.read(repo),
    markDrift: async (repo, backend, version, checksum, live) => {
      const r = this.repo(repo);
      if (r.writing.id) return 'writing';
      if (r.versions[backend] !== String(version) || r.checksums[backend] !== checksum) return 'moved';
      r.drift[backend] = `${live} ${Date.now()}`;
      this.marks.push({ backend, live });
      return 'ok';
    },
  };
}

function setup() {
  const store = new DriftStore();
  store.seed(R, { b1: [3, recorded], b2: [3, recorded], b3: [3, recorded] });
  const repairs: Array<[string, string, string]> = [];
  const retries: string[] = [];
  const checker = new ReadChecker({
    repos: store.records,
    log: createLogger('silent'),
    observer: { readRetried: (reason) => retries.push(reason) },
    repairs: { schedule: (repo, backend, why) => repairs.push([repo, backend, why]) },
  });
  const route: ReadRoute = { repo: R, version: 3, candidates: [], leaders: ['b1', 'b2', 'b3'], checksums: new Map([['b1', recorded], ['b2', recorded], ['b3', recorded]]) };
  return { store, checker, route, repairs, retries };
}

const refs = (checksum: string): LiveCopy => ({ kind: 'refs', checksum });

describe('ReadChecker', () => {
  it('serves a copy whose listing agrees with the route, without any I/O', async () => {
    const { store, checker, route, repairs, retries } = setup();
    expect(checker.agrees(route, 'b2', refs(recorded))).toBe(true);
    expect(await checker.check(route, 'b2', refs(recorded))).toBe('serve');
    expect(store.reads).toBe(0);
    expect(repairs).toEqual([]);
    expect(retries).toEqual([]);
  });

  it('serves a copy whose record moved to what it holds since the route was read (a push committed on it)', async () => {
    const { store, checker, route, repairs, retries } = setup();
    store.seed(R, { b2: [4, pushed] });
    expect(checker.agrees(route, 'b2', refs(pushed))).toBe(false);
    expect(await checker.check(route, 'b2', refs(pushed))).toBe('serve');
    expect(store.reads).toBe(1);
    expect(store.marks).toEqual([]);
    expect(repairs).toEqual([]);
    expect(retries).toEqual([]);
  });

  it('retries without drift when a write marker names the copy (its push is not acknowledged yet)', async () => {
    for (const marker of [{ backend: 'b2', copies: '' }, { backend: 'b1', copies: 'b2' }]) {
      const { store, checker, route, repairs, retries } = setup();
      store.repo(R).writing = { id: 'w1', proxy: 'p', user: 'u', transport: 'http', started: '1', heartbeat: String(Date.now()), preChecksum: recorded, ...marker };
      expect(await checker.check(route, 'b2', refs(pushed))).toBe('landing'); // dropped like a retry; the caller may route again once it is recorded
      expect(store.marks).toEqual([]);
      expect(store.repo(R).drift).toEqual({});
      expect(repairs).toEqual([]);
      expect(retries).toEqual(['writing']);
    }
  });

  it('retries without drift a copy that is behind the leaders (it is stale, not contradicting)', async () => {
    const { store, checker, route, repairs, retries } = setup();
    store.seed(R, { b1: [4, pushed], b3: [4, pushed] });
    expect(await checker.check(route, 'b2', refs(divergent))).toBe('retry');
    expect(store.marks).toEqual([]);
    expect(repairs).toEqual([]);
    expect(retries).toEqual(['moved']);
  });

  it('marks a contradicting copy drifted, schedules its repair and retries', async () => {
    const { store, checker, route, repairs, retries } = setup();
    expect(await checker.check(route, 'b2', refs(divergent))).toBe('retry');
    expect(store.marks).toEqual([{ backend: 'b2', live: divergent }]);
    expect(store.repo(R).drift.b2).toMatch(new RegExp(`^${divergent} \\d+$`));
    expect(repairs).toEqual([[R, 'b2', 'contradicts']]);
    expect(retries).toEqual(['contradicts']);
    // Found again: no second mark, the repair is asked for again (it runs once per copy at a time).
    expect(await checker.check(route, 'b2', refs(divergent))).toBe('retry');
    expect(store.marks).toHaveLength(1);
    expect(repairs).toHaveLength(2);
  });

  it('calls an empty copy of a repository with refs "empty"', async () => {
    const { store, checker, route, repairs, retries } = setup();
    expect(await checker.check(route, 'b3', refs(EMPTY_CHECKSUM))).toBe('retry');
    expect(store.marks).toEqual([{ backend: 'b3', live: EMPTY_CHECKSUM }]);
    expect(repairs).toEqual([[R, 'b3', 'empty']]);
    expect(retries).toEqual(['empty']);
  });

  it('marks a missing copy drifted as "missing", schedules its repair and retries', async () => {
    const { store, checker, route, repairs, retries } = setup();
    const live: LiveCopy = { kind: 'missing', detail: 'HTTP 404' };
    expect(checker.agrees(route, 'b2', live)).toBe(false);
    expect(await checker.check(route, 'b2', live)).toBe('retry');
    expect(store.repo(R).drift.b2).toMatch(/^missing \d+$/);
    expect(repairs).toEqual([[R, 'b2', 'missing']]);
    expect(retries).toEqual(['missing']);
  });

  it('schedules a repair for a failed fetch and retries, without marking drift', async () => {
    const { store, checker, route, repairs, retries } = setup();
    expect(await checker.check(route, 'b2', { kind: 'failed', detail: 'ERR upload-pack: not our ref' })).toBe('retry');
    expect(store.marks).toEqual([]);
    expect(store.repo(R).drift).toEqual({});
    expect(repairs).toEqual([[R, 'b2', 'fetch failed: ERR upload-pack: not our ref']]);
    expect(retries).toEqual(['failed']);
  });

  it('retries without recording anything when the record cannot be read', async () => {
    const { store, checker, route, repairs, retries } = setup();
    store.read = async () => {
      throw new Error('redis down');
    };
    expect(await checker.check(route, 'b2', refs(divergent))).toBe('retry');
    expect(store.marks).toEqual([]);
    expect(repairs).toEqual([]);
    expect(retries).toEqual(['contradicts']);
  });

  it('retries without drift when the record moved between the read and the mark', async () => {
    const { store, checker, route, repairs, retries } = setup();
    const read = store.read.bind(store);
    store.read = async (repo) => {
      const state = await read(repo);
      store.seed(R, { b2: [4, pushed] }); // a commit lands on b2 right after the read
      return state;
    };
    expect(await checker.check(route, 'b2', refs(divergent))).toBe('retry');
    expect(store.repo(R).drift).toEqual({});
    expect(repairs).toEqual([]);
    expect(retries).toEqual(['moved']);
  });
});
