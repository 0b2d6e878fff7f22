/**
 * The Redis schema, and the only code that names a key (docs/redis.md).
 * Every key of one repository carries the hash tag `{<repo>}` so that the
 * guarded scripts, which touch several of them at once, also run on Redis
 * Cluster. Canonical repository names cannot contain `{` or `}`.
 */
export class Keys {
  constructor(
    readonly prefix: string,
    /** Redis Cluster: the work index is one shard per slot (`work:{<tag>}`, docs/redis.md `work`); one key otherwise. */
    readonly shardWork = false,
  ) {}

  /** hash: backend id → version */
  versions(repo: string): string {
    return `${this.prefix}repo:{${repo}}:versions`;
  }
  /** hash: backend id → checksum of its refs at that version */
  checksums(repo: string): string {
    return `${this.prefix}repo:{${repo}}:checksums`;
  }
  /** hash: the write in flight (id, backend, proxy, user, transport, started, heartbeat, preChecksum, copies, commands) */
  writing(repo: string): string {
    return `${this.prefix}repo:{${repo}}:writing`;
  }
  /** hash: why the repository refuses writes (or reads): reason, detail, since */
  frozen(repo: string): string {
    return `${this.prefix}repo:{${repo}}:frozen`;
  }
  /** hash: backend id → epoch ms until which it is suspect (a marker was cleared by force: docs/architecture.md "Failures resolved without a human") */
  suspect(repo: string): string {
    return `${this.prefix}repo:{${repo}}:suspect`;
  }
  /**
   * hash: backend id → "<suspect until ms>\n<command lines>": the commands of
   * the interrupted write that made it suspect, when its marker held them (the
   * settling adopts late bytes only when they are that write's)
   */
  suspectWrites(repo: string): string {
    return `${this.prefix}repo:{${repo}}:suspect-writes`;
  }
  /** hash: backend id → "<live checksum> <seen at ms>" of a copy that no longer matches its recorded checksum */
  drift(repo: string): string {
    return `${this.prefix}repo:{${repo}}:drift`;
  }
  /**
   * hash: backend id → "<recorded version> <checksum>": a catch-up copied that checksum there but could not
   * record it (the version it copied was superseded meanwhile); githa's own, unrecorded state of that copy,
   * valid while the backend's record stays at that version (docs/architecture.md "Catch-up relay")
   */
  unrecorded(repo: string): string {
    return `${this.prefix}repo:{${repo}}:unrecorded`;
  }
  /** hash: `epoch` (random id of this record, new at every adoption or recovery), `since` (ms) */
  meta(repo: string): string {
    return `${this.prefix}repo:{${repo}}:meta`;
  }
  /**
   * hash: the tombstone of a deleted or renamed repository (docs/operations.md "Repository lifecycle"):
   * `kind` (deleting, deleted, renaming, renamed), `to` (the new name), `at` (ms), `stamp` (trash stamp), `by`
   */
  gone(repo: string): string {
    return `${this.prefix}repo:{${repo}}:gone`;
  }
  /**
   * hash: backend id → ms since it was assigned: the backends that should hold R (docs/redis.md `assigned`,
   * docs/architecture.md "Replication factor"). Absent: every configured backend (`replication.factor` unset).
   */
  assigned(repo: string): string {
    return `${this.prefix}repo:{${repo}}:assigned`;
  }
  /**
   * hash: replacement backend id → the lost backend it replaces, while a re-replication runs (docs/architecture.md
   * "Re-replication"): the lost backend leaves the assignment once the replacement caught up to the leaders.
   */
  replacing(repo: string): string {
    return `${this.prefix}repo:{${repo}}:replacing`;
  }
  /** string: short lock so one githa verifies a repository per interval */
  verifyLock(repo: string): string {
    return `${this.prefix}verify:{${repo}}`;
  }
  /** stream: the push log */
  log(repo: string): string {
    return `${this.prefix}repo:{${repo}}:log`;
  }
  /** string: the Redlock write lock */
  lock(repo: string): string {
    return `${this.prefix}lock:{${repo}}`;
  }
  /** string: short lock held while one githa copies the repository to one backend */
  pairLock(repo: string, backend: string): string {
    return `${this.prefix}sync:{${repo}}:${backend}`;
  }
  /** hash: `repos:<backend>` and `bytes:<backend>`: each backend's use, as placement reads it (a hint written after the scripts; docs/redis.md `placement`) */
  placement(): string {
    return `${this.prefix}placement`;
  }
  /** sorted set: every known repository, scored by last write (ms since epoch) */
  repos(): string {
    return `${this.prefix}repos`;
  }
  /**
   * sorted set: the repositories that need work (src/state/scripts/work.ts), scored by when they first did;
   * written inside the repository's scripts, so on Redis Cluster it is the shard in R's slot.
   */
  work(repo: string): string {
    return this.shardWork ? `${this.prefix}work:{${slotTag(repo)}}` : `${this.prefix}work`;
  }
  /** set: the work shards that may be non-empty (Redis Cluster only; a hint written after the script, repaired by the sweep). */
  workShards(): string {
    return `${this.prefix}work-shards`;
  }
  /** string: the claim of the githa that runs a shared periodic task this interval (`sweep`, …; src/state/repo-index.ts). */
  periodic(task: string): string {
    return `${this.prefix}periodic:${task}`;
  }
  /** sorted set: repositories that got kept refs (refs/githa/kept/…), scored by when; a hint for `githa dataloss` */
  kept(): string {
    return `${this.prefix}kept`;
  }
  /** stream: "repository R reached version V on backend B", for replicators */
  events(): string {
    return `${this.prefix}events`;
  }
  /** hash: health and operator overrides of one backend */
  /** string: the lease of a cluster-wide job one githa runs at a time (`re-replicate`): the holder's token */
  roleLease(name: string): string {
    return `${this.prefix}lease:${name}`;
  }
  /** hash: backend id → ms since the re-replicating githa has seen it down (docs/architecture.md "Re-replication") */
  downSince(): string {
    return `${this.prefix}down-since`;
  }
  /**
   * string: the configured backend ids (sorted, space-separated) with which the re-replicating githa last finished
   * replacing backends removed from the configuration (docs/architecture.md "Re-replication")
   */
  removedChecked(): string {
    return `${this.prefix}re-replicate:backends`;
  }
  backend(id: string): string {
    return `${this.prefix}backend:${id}`;
  }
  /** pub/sub channel: "a write lock was released" (`<githa id> <repo>`; src/state/lock-notify.ts) */
  lockReleased(): string {
    return `${this.prefix}lock-released`;
  }
  /** pub/sub channel: "backend overrides changed" (src/state/overrides.ts) */
  overrides(): string {
    return `${this.prefix}overrides`;
  }
  /** pub/sub channel: each githa's "override change applied" answer */
  overridesAck(): string {
    return `${this.prefix}overrides:ack`;
  }
}

/** CRC16-CCITT (XMODEM) as Redis Cluster hashes keys (cluster spec, "Keys distribution model"). */
export function crc16(s: string): number {
  let crc = 0;
  for (const byte of Buffer.from(s)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The slot of a key whose hash tag is `tag`. */
export function slotOf(tag: string): number {
  return crc16(tag) % 16384;
}

let tags: string[] | undefined;

/** A short tag in the same slot as `repo` (built once: the first tag `w<n>` found for each of the 16384 slots). */
export function slotTag(repo: string): string {
  if (!tags) {
    const found: string[] = new Array<string>(16384);
    let left = 16384;
    for (let n = 0; left > 0; n++) {
      const t = `w${n}`;
      const slot = slotOf(t);
      if (found[slot] === undefined) {
        found[slot] = t;
        left--;
      }
    }
    tags = found;
  }
  return tags[slotOf(repo)]!;
}
