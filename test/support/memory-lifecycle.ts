/**
 * The lifecycle records of MemoryStore (test/support/memory-store.ts), with
 * the rules of src/state/scripts/lifecycle.ts: create, the tombstone of a
 * delete or rename, restore and a rename's new record.
 */
import { EMPTY_CHECKSUM } from '../../src/cluster/checksum.js';
import { goneFields, parseGone, type Gone, type SavedRecord } from '../../src/state/repo-state.js';
import type { CreateOptions, LogFields } from '../../src/state/repository-store.js';

type Hash = Record<string, string>;

/** The parts of one in-memory repository these rules touch. */
export interface LifecycleRepo {
  versions: Hash;
  checksums: Hash;
  writing: Hash;
  frozen: Hash;
  suspect: Hash;
  drift: Hash;
  suspectWrites: Hash;
  gone: Hash;
  assigned: Hash;
  meta: Hash;
  log: Record<string, string | number>[];
}

/** What the rules need of the store: a repository's records (made on first use), the write locks, the index. */
export interface LifecycleHost {
  repo(name: string): LifecycleRepo;
  readonly locks: ReadonlyMap<string, string>;
  readonly index: Set<string>;
}

function recordOf(r: LifecycleRepo): SavedRecord {
  return {
    versions: new Map(Object.entries(r.versions).map(([b, v]) => [b, Number(v)])),
    checksums: new Map(Object.entries(r.checksums)),
  };
}

function put(r: LifecycleRepo, versions: ReadonlyMap<string, number>, checksums: ReadonlyMap<string, string>): void {
  for (const [b, v] of versions) {
    r.versions[b] = String(v);
    r.checksums[b] = checksums.get(b) ?? '';
  }
}

export function memCreate(host: LifecycleHost, repo: string, backends: readonly string[], log: LogFields, opts: CreateOptions = {}): 'ok' | 'exists' | 'gone' {
  const r = host.repo(repo);
  if (r.gone.kind) return 'gone';
  if (Object.keys(r.versions).length > 0 || r.frozen.reason) return 'exists';
  for (const b of backends) {
    r.versions[b] = '1';
    r.checksums[b] = EMPTY_CHECKSUM;
  }
  // The assignment and factor in the same step as the versions (src/state/scripts/lifecycle.ts CREATE).
  if (opts.assigned) r.assigned = Object.fromEntries(opts.assigned.map((b) => [b, String(Date.now())]));
  if (opts.factor !== undefined) r.meta.factor = String(opts.factor);
  r.log.push({ version: 1, ...log });
  host.index.add(repo);
  return 'ok';
}

export function memMarkGone(host: LifecycleHost, repo: string, token: string, gone: Gone): 'ok' | 'lock' {
  if (host.locks.get(repo) !== token) return 'lock';
  const r = host.repo(repo);
  const record = r.gone.record;
  r.gone = goneFields(gone);
  if (record && !r.gone.record) r.gone.record = record;
  return 'ok';
}

export function memRetire(host: LifecycleHost, repo: string, token: string, gone: Gone, log: LogFields): 'ok' | 'lock' {
  if (host.locks.get(repo) !== token) return 'lock';
  const r = host.repo(repo);
  const saved = Object.keys(r.versions).length > 0 ? recordOf(r) : parseGone(r.gone)?.record;
  const { record: _ignored, ...rest } = gone;
  r.gone = goneFields(saved ? { ...rest, record: saved } : rest);
  r.versions = {};
  r.checksums = {};
  r.writing = {};
  r.frozen = {};
  r.suspect = {};
  r.drift = {};
  r.suspectWrites = {};
  r.assigned = {};
  r.meta = {};
  r.log.push(log);
  host.index.delete(repo);
  return 'ok';
}

export function memRevive(host: LifecycleHost, repo: string, token: string, log: LogFields, record?: SavedRecord): 'ok' | 'lock' | 'exists' {
  if (host.locks.get(repo) !== token) return 'lock';
  const r = host.repo(repo);
  if (record) {
    if (Object.keys(r.versions).length > 0 || r.frozen.reason) return 'exists';
    put(r, record.versions, record.checksums);
    host.index.add(repo);
  }
  r.gone = {};
  r.log.push(log);
  return 'ok';
}

export function memTransfer(
  host: LifecycleHost,
  repo: string,
  token: string,
  versions: ReadonlyMap<string, number>,
  checksums: ReadonlyMap<string, string>,
  log: LogFields,
): 'ok' | 'exists' | 'lock' {
  if (host.locks.get(repo) !== token) return 'lock';
  const r = host.repo(repo);
  if (Object.keys(r.versions).length > 0 || r.frozen.reason || r.gone.kind) return 'exists';
  put(r, versions, checksums);
  r.log.push(log);
  host.index.add(repo);
  return 'ok';
}
