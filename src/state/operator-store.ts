import { randomUUID } from 'node:crypto';
import { MAINTENANCE_BEGIN, MAINTENANCE_RELEASE, SYNC_COMMIT, THAW_DEMOTE, THAW_PROMOTE } from './operator-scripts.js';
import type { FreezeReason } from './repo-state.js';
import type { LogFields } from './repository-store.js';
import { flattenFields, replyOf, type ScriptDescriptor, type ScriptRunner } from './script.js';
import type { Keys } from './keys.js';

type Guard = 'LOCK';
export type DemoteResult = { status: 'OK' | 'MOVED' | Guard; max: number; marker: string; lifted: string };
export type PromoteResult = { status: 'OK' | 'UNAMBIGUOUS' | 'MAINTENANCE' | Guard; version: number };
export type BeginMaintenanceResult = { status: 'OK' | 'FROZEN' | 'WRITING' | Guard; why: string };
export type ReleaseMaintenanceResult = { status: 'OK' | Guard; version: number; lifted: boolean };
export type SyncCommitResult = 'OK' | 'CURRENT' | 'MOVED' | 'WRITING' | Guard;

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
/** The nine keys a thaw touches. */
const THAW_KEYS = (k: Keys, repo: string): string[] => [
  k.lock(repo), k.versions(repo), k.checksums(repo), k.writing(repo), k.frozen(repo), k.suspect(repo), k.drift(repo), k.meta(repo), k.log(repo),
];

interface DemoteArgs { token: string; backend: string; expectVersion: number | undefined; expectMax: number; liftFreeze: FreezeReason | ''; logMax: number; log: LogFields }
const DEMOTE: ScriptDescriptor<[DemoteArgs], DemoteResult> = {
  name: 'githaOpThawDemote',
  durable: true,
  lua: THAW_DEMOTE,
  keys: THAW_KEYS,
  args: (a) => [a.token, a.backend, a.expectVersion === undefined ? '' : String(a.expectVersion), a.expectMax, a.liftFreeze, a.logMax, randomUUID(), Date.now(), ...flattenFields(a.log)],
  parse: (reply) => {
    const [s, max, marker, lifted] = replyOf(reply);
    return { status: str(s) as DemoteResult['status'], max: Number(max ?? 0), marker: str(marker), lifted: str(lifted) };
  },
};

interface PromoteArgs { token: string; backend: string; checksum: string; logMax: number; log: LogFields }
const PROMOTE: ScriptDescriptor<[PromoteArgs], PromoteResult> = {
  name: 'githaOpThawPromote',
  durable: true,
  lua: THAW_PROMOTE,
  keys: THAW_KEYS,
  args: (a) => [a.token, a.backend, a.checksum, a.logMax, randomUUID(), Date.now(), ...flattenFields(a.log)],
  parse: (reply) => {
    const [s, v] = replyOf(reply);
    return { status: str(s) as PromoteResult['status'], version: Number(v ?? 0) };
  },
};

interface BeginArgs { token: string; backend: string; detail: string; logMax: number; log: LogFields }
const BEGIN_MAINTENANCE: ScriptDescriptor<[BeginArgs], BeginMaintenanceResult> = {
  name: 'githaOpMaintenanceBegin',
  durable: true,
  lua: MAINTENANCE_BEGIN,
  keys: (k, repo) => [k.lock(repo), k.frozen(repo), k.writing(repo), k.log(repo)],
  args: (a) => [a.token, a.detail, Date.now(), a.logMax, a.backend, ...flattenFields(a.log)],
  parse: (reply) => {
    const [s, why] = replyOf(reply);
    return { status: str(s) as BeginMaintenanceResult['status'], why: str(why) };
  },
};

interface ReleaseArgs { token: string; backend: string; checksum: string | undefined; logMax: number; log: LogFields }
const RELEASE_MAINTENANCE: ScriptDescriptor<[ReleaseArgs], ReleaseMaintenanceResult> = {
  name: 'githaOpMaintenanceRelease',
  durable: true,
  lua: MAINTENANCE_RELEASE,
  keys: (k, repo) => [k.lock(repo), k.versions(repo), k.checksums(repo), k.frozen(repo), k.suspect(repo), k.drift(repo), k.log(repo)],
  args: (a) => [a.token, a.backend, a.checksum ?? '', a.logMax, ...flattenFields(a.log)],
  parse: (reply) => {
    const [s, v, lifted] = replyOf(reply);
    return { status: str(s) as ReleaseMaintenanceResult['status'], version: Number(v ?? 0), lifted: Number(lifted) === 1 };
  },
};

interface SyncArgs { token: string; target: string; version: number; checksum: string; source: string; logMax: number; log: LogFields }
const SYNC: ScriptDescriptor<[SyncArgs], SyncCommitResult> = {
  name: 'githaOpSyncCommit',
  durable: true,
  lua: SYNC_COMMIT,
  keys: (k, repo) => [k.lock(repo), k.versions(repo), k.checksums(repo), k.writing(repo), k.drift(repo), k.log(repo)],
  args: (a) => [a.token, a.target, a.version, a.checksum, a.source, a.logMax, ...flattenFields(a.log)],
  parse: (reply) => str(replyOf(reply)[0]) as SyncCommitResult,
};

/**
 * The state changes of the operator commands (`githa thaw`, `lock`, `sync`;
 * docs/cli.md): each one guarded Lua script (operator-scripts.ts) that checks
 * the caller's write-lock token and appends a push-log entry naming the
 * operator, run as a descriptor through the same ScriptRunner as the
 * cluster's scripts (durable changes wait for redis.waitReplicas).
 */
export class OperatorStore {
  constructor(
    private readonly scripts: ScriptRunner,
    /** Push-log entries kept per repository: config pushLog.maxLength. */
    private readonly logMax: number,
  ) {}

  /**
   * Demotes `backend` (see THAW_DEMOTE). `expectVersion` (undefined = none)
   * and `expectMax` are what the operator was shown; `liftFreeze` the stored
   * freeze reason to lift when it is still that one.
   */
  demote(repo: string, token: string, backend: string, expectVersion: number | undefined, expectMax: number, liftFreeze: FreezeReason | '', log: LogFields): Promise<DemoteResult> {
    return this.scripts.run(DEMOTE, repo, { token, backend, expectVersion, expectMax, liftFreeze, logMax: this.logMax, log });
  }

  /** Promotes `backend` with its live `checksum` (see THAW_PROMOTE). */
  promote(repo: string, token: string, backend: string, checksum: string, log: LogFields): Promise<PromoteResult> {
    return this.scripts.run(PROMOTE, repo, { token, backend, checksum, logMax: this.logMax, log });
  }

  /** Freezes for maintenance under the caller's lock: 'OK', or why not ('FROZEN' + reason, 'WRITING' + backend, 'LOCK'). */
  beginMaintenance(repo: string, token: string, backend: string, detail: string, log: LogFields): Promise<BeginMaintenanceResult> {
    return this.scripts.run(BEGIN_MAINTENANCE, repo, { token, backend, detail, logMax: this.logMax, log });
  }

  /** Ends maintenance: with a checksum, `backend` leads at max + 1; without, only the freeze is lifted. */
  releaseMaintenance(repo: string, token: string, backend: string, checksum: string | undefined, log: LogFields): Promise<ReleaseMaintenanceResult> {
    return this.scripts.run(RELEASE_MAINTENANCE, repo, { token, backend, checksum, logMax: this.logMax, log });
  }

  /** Records a copy made by `githa sync` (see SYNC_COMMIT). */
  commitSync(repo: string, token: string, target: string, version: number, checksum: string, source: string, log: LogFields): Promise<SyncCommitResult> {
    return this.scripts.run(SYNC, repo, { token, target, version, checksum, source, logMax: this.logMax, log });
  }
}
