import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import { flattenFields, runScript, type Durability } from './redis-call.js';
import { MAINTENANCE_BEGIN, MAINTENANCE_RELEASE, SYNC_COMMIT, THAW_DEMOTE, THAW_PROMOTE } from './operator-scripts.js';
import type { FreezeReason } from './repo-state.js';
import type { LogFields } from './repository-store.js';


/**
 * The state changes of the operator commands (`githa thaw`, `lock`, `sync`;
 * docs/cli.md): each one guarded Lua script (operator-scripts.ts) that checks
 * the caller's write-lock token and appends a push-log entry naming the
 * operator. Built from the same Redis connection and Keys as StateStore.
 */
export class OperatorStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** Push-log entries kept per repository: config pushLog.maxLength. */
    private readonly logMax: number,
    /** Replicas that must confirm each change (redis.waitReplicas; see runScript). */
    private readonly durable?: Durability,
  ) {
    redis.defineCommand('githaOpThawDemote', { numberOfKeys: 9, lua: THAW_DEMOTE });
    redis.defineCommand('githaOpThawPromote', { numberOfKeys: 9, lua: THAW_PROMOTE });
    redis.defineCommand('githaOpMaintenanceBegin', { numberOfKeys: 4, lua: MAINTENANCE_BEGIN });
    redis.defineCommand('githaOpMaintenanceRelease', { numberOfKeys: 7, lua: MAINTENANCE_RELEASE });
    redis.defineCommand('githaOpSyncCommit', { numberOfKeys: 6, lua: SYNC_COMMIT });
  }

  /**
   * Demotes `backend` (see THAW_DEMOTE). `expectVersion` (undefined = none)
   * and `expectMax` are what the operator was shown; `liftFreeze` the stored
   * freeze reason to lift when it is still that one.
   */
  async demote(
    repo: string,
    token: string,
    backend: string,
    expectVersion: number | undefined,
    expectMax: number,
    liftFreeze: FreezeReason | '',
    log: LogFields,
  ): Promise<{ status: string; max: number; marker: string; lifted: string }> {
    const k = this.keys;
    const [status, max = 0, marker = '', lifted = ''] = await runScript<[string, number?, string?, string?]>(
      this.redis,
      'githaOpThawDemote',
      [k.lock(repo), k.versions(repo), k.checksums(repo), k.writing(repo), k.frozen(repo), k.suspect(repo), k.drift(repo), k.meta(repo), k.log(repo)],
      [token, backend, expectVersion === undefined ? '' : String(expectVersion), expectMax, liftFreeze, this.logMax, randomUUID(), Date.now(), ...flattenFields(log)],
      this.durable,
    );
    return { status, max: Number(max), marker, lifted };
  }

  /** Promotes `backend` with its live `checksum` (see THAW_PROMOTE): 'OK' with the new version, 'UNAMBIGUOUS', 'MAINTENANCE' or 'LOCK'. */
  async promote(repo: string, token: string, backend: string, checksum: string, log: LogFields): Promise<{ status: string; version: number }> {
    const k = this.keys;
    const [status, version = 0] = await runScript<[string, number?]>(
      this.redis,
      'githaOpThawPromote',
      [k.lock(repo), k.versions(repo), k.checksums(repo), k.writing(repo), k.frozen(repo), k.suspect(repo), k.drift(repo), k.meta(repo), k.log(repo)],
      [token, backend, checksum, this.logMax, randomUUID(), Date.now(), ...flattenFields(log)],
      this.durable,
    );
    return { status, version: Number(version) };
  }

  /** Freezes for maintenance under the caller's lock: 'OK', or why not ('FROZEN' + reason, 'WRITING' + backend, 'LOCK'). */
  async beginMaintenance(repo: string, token: string, backend: string, detail: string, log: LogFields): Promise<{ status: string; why: string }> {
    const k = this.keys;
    const [status, why = ''] = await runScript<[string, string?]>(
      this.redis,
      'githaOpMaintenanceBegin',
      [k.lock(repo), k.frozen(repo), k.writing(repo), k.log(repo)],
      [token, detail, Date.now(), this.logMax, backend, ...flattenFields(log)],
      this.durable,
    );
    return { status, why };
  }

  /** Ends maintenance: with a checksum, `backend` leads at max + 1; without, only the freeze is lifted. */
  async releaseMaintenance(
    repo: string,
    token: string,
    backend: string,
    checksum: string | undefined,
    log: LogFields,
  ): Promise<{ status: string; version: number; lifted: boolean }> {
    const k = this.keys;
    const [status, version = 0, lifted = 0] = await runScript<[string, number?, number?]>(
      this.redis,
      'githaOpMaintenanceRelease',
      [k.lock(repo), k.versions(repo), k.checksums(repo), k.frozen(repo), k.suspect(repo), k.drift(repo), k.log(repo)],
      [token, backend, checksum ?? '', this.logMax, ...flattenFields(log)],
      this.durable,
    );
    return { status, version: Number(version), lifted: Number(lifted) === 1 };
  }

  /** Records a copy made by `githa sync` (see SYNC_COMMIT): 'OK', 'CURRENT', 'MOVED', 'WRITING' or 'LOCK'. */
  async commitSync(repo: string, token: string, target: string, version: number, checksum: string, source: string, log: LogFields): Promise<string> {
    const k = this.keys;
    const [status] = await runScript<[string]>(
      this.redis,
      'githaOpSyncCommit',
      [k.lock(repo), k.versions(repo), k.checksums(repo), k.writing(repo), k.drift(repo), k.log(repo)],
      [token, target, version, checksum, source, this.logMax, ...flattenFields(log)],
      this.durable,
    );
    return status;
  }
}
