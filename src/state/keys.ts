/**
 * The Redis schema, and the only code that names a key (docs/redis.md).
 * Every key of one repository carries the hash tag `{<repo>}` so that the
 * guarded scripts, which touch several of them at once, also run on Redis
 * Cluster. Canonical repository names cannot contain `{` or `}`.
 */
export class Keys {
  constructor(readonly prefix: string) {}

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
  /** sorted set: every known repository, scored by last write (ms since epoch) */
  repos(): string {
    return `${this.prefix}repos`;
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
