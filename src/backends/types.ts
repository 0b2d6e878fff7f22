import type { RefAdvertisement } from '../protocol/advertisement.js';
import type { RefCommand } from '../protocol/receive-pack-request.js';
import type { ReportStatus } from '../protocol/report-status.js';

export interface RefTip {
  readonly name: string;
  readonly oid: string;
  /**
   * Where the backend told it (v2 ls-refs `symrefs`; not kept for HEAD): the
   * ref this one is a symbolic ref to; its `oid` is that ref's. The write check undoes a push
   * through it (src/cluster/write-check.ts).
   */
  readonly symrefTarget?: string | undefined;
}

/**
 * githa as a Git client of one backend, over whichever transport the backend
 * offers (HTTP here; SSH and git:// implement the same interface). Used by the
 * catch-up relay, checksums and health checks; never by client traffic.
 */
/**
 * A client's own HTTP credentials, lent to githa's listing of a repository it
 * has no record of yet, in passthrough mode only (docs/security.md
 * "Authentication"): used for that one listing, never stored, never logged,
 * and only by a backend without service credentials of its own.
 */
export interface LentCredentials {
  authorization?: string | undefined;
  cookie?: string | undefined;
}

export interface BackendClient {
  readonly id: string;
  /** Every ref (protocol v2 ls-refs), or null when the repository does not exist there. `lent`: see LentCredentials (HTTP only; others ignore it). */
  listRefs(repo: string, signal?: AbortSignal, lent?: LentCredentials): Promise<RefTip[] | null>;
  /** HEAD's symbolic target where the transport can tell it (ls-refs `symrefs`): null when the repository does not exist, undefined when HEAD is detached or unborn. */
  headTarget?(repo: string, signal?: AbortSignal): Promise<string | null | undefined>;
  /** receive-pack's ref advertisement (v0), or null when the repository does not exist there. */
  receivePackAdvertisement(repo: string, signal?: AbortSignal): Promise<RefAdvertisement | null>;
  /** One v2 `fetch` with `done`: the raw pack bytes, streamed (gitprotocol-v2 "packfile"). */
  fetchPack(repo: string, wants: readonly string[], haves: readonly string[], signal?: AbortSignal): AsyncIterable<Buffer>;
  /**
   * Which of `oids` the repository holds, asked as git's negotiation asks
   * (src/protocol/acknowledgments.ts: a v2 `fetch` without `done`, want
   * `tip`, have each id; the acknowledgments are read and the request is
   * closed before any pack). A backend that does not speak protocol v2
   * answers "none": callers treat that as "lacking" and keep more, never less.
   */
  hasObjects(repo: string, tip: string, oids: readonly string[], signal?: AbortSignal): Promise<Set<string>>;
  /** One receive-pack: the command list, then the pack when given; resolves with the report. */
  pushPack(
    repo: string,
    commands: readonly RefCommand[],
    capabilities: readonly string[],
    pack: AsyncIterable<Buffer> | null,
    signal?: AbortSignal,
  ): Promise<ReportStatus>;
  /**
   * A cheap liveness check for the health checker: resolves when the backend's
   * server accepts clients, rejects with BackendUnavailableError when it does
   * not (refused, timed out, 5xx). Never uses a pooled session (see probe.ts).
   */
  probe(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export type StreamService = 'git-upload-pack' | 'git-receive-pack' | 'git-upload-archive';

/**
 * One running Git service on a backend over a stateful transport (an SSH exec
 * channel, or a git:// connection): the byte streams of the service, as if it
 * were a local `git-upload-pack` process.
 */
export interface BackendStream {
  /** To the service's standard input. end() it to close the input side. */
  readonly stdin: NodeJS.WritableStream & import('node:stream').Writable;
  /** The service's standard output. */
  readonly stdout: import('node:stream').Readable;
  /** The service's standard error (SSH); null where the transport has none (git://). */
  readonly stderr: import('node:stream').Readable | null;
  /** The exit status (SSH) once the service ended; null where the transport has none or the connection broke. */
  readonly exit: Promise<number | null>;
  /** Tears the service down (closes the channel or socket). */
  destroy(err?: Error): void;
}

export interface OpenServiceOptions {
  /** The GIT_PROTOCOL value to pass on (e.g. `version=2`); git:// sends it as an extra parameter. */
  protocol?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** A backend reached over a stateful transport (SSH or git://). */
export interface StreamBackendClient extends BackendClient {
  readonly transport: 'ssh' | 'git';
  /**
   * Starts `service` for `repo` on the backend. Rejects with
   * BackendUnavailableError (bytesSent=false) when the backend cannot be reached.
   */
  openService(repo: string, service: StreamService, options?: OpenServiceOptions): Promise<BackendStream>;
}

/** One entry of a backend's trash directory: a deleted copy, by the UTC stamp of its deletion (`20261206T074700Z`). */
export interface TrashEntry {
  readonly stamp: string;
  /** Canonical name (`team/app.git`) of the repository the copy was. */
  readonly repo: string;
}

/** What a managed backend's listing found under its repository root. */
export interface AdminListing {
  /** Canonical names (`team/app.git`) of every repository there, sorted; the trash directory is not listed. */
  readonly repositories: readonly string[];
  /** Paths (relative to the root) that look like repositories but have no valid name: reported, never touched. */
  readonly invalid: readonly string[];
}

/**
 * githa managing repositories on one stock backend over its admin account
 * (`backends[].admin`; docs/operations.md "Repository lifecycle";
 * deploy/backend/githa-admin). Every operation is one fixed program run
 * over SSH with the names as quoted positional arguments, each name
 * checked by canonicalRepositoryName before anything is sent. A copy may
 * sit at `X.git`, `X` or `X/.git` (docs/protocol.md "Repository names"):
 * trash, restore and rename keep the layout they find. Failures are
 * BackendUnavailableError (not reachable) or BackendAdminError.
 */
/** Repository → refs (null: absent; undefined: ask over the Git protocol). */
export type AdminRefs = Map<string, RefTip[] | null | undefined>;

export interface RepositoryAdmin {
  readonly backend: string;
  /** Every repository under the root. */
  list(signal?: AbortSignal): Promise<AdminListing>;
  /**
   * The refs of many repositories in one call (adoption, src/cluster/batch-copies.ts):
   * per name its refs as `git for-each-ref` shows them (every ref except HEAD, no
   * peeled ones), null when absent, undefined when it must be listed over the Git protocol.
   */
  refs?(repos: readonly string[], signal?: AbortSignal): Promise<AdminRefs>;
  /**
   * An empty bare repository `X.git` with HEAD at `refs/heads/<headBranch>`,
   * `repositories.gitConfig` set and the description written; 'exists' (and
   * nothing changed) when a copy in any layout is there already.
   */
  create(repo: string, o?: { description?: string | undefined; headBranch?: string | undefined }, signal?: AbortSignal): Promise<'created' | 'exists'>;
  /** Moves the copy into `<root>/<repositories.trashDir>/<stamp>/`; 'absent' when there is none. */
  trash(repo: string, stamp: string, signal?: AbortSignal): Promise<'trashed' | 'absent'>;
  /**
   * Moves a trashed copy back: the one of `stamp`, or the newest. 'absent':
   * no trashed copy; 'exists': a copy is at the name already (nothing moved).
   */
  restore(repo: string, stamp?: string, signal?: AbortSignal): Promise<{ status: 'restored' | 'absent' | 'exists'; stamp?: string }>;
  /** Renames the copy of `from` to `to`, same layout; 'absent': no copy of `from`; 'exists': `to` is taken (nothing moved). */
  rename(from: string, to: string, signal?: AbortSignal): Promise<'renamed' | 'absent' | 'exists'>;
  /** Every trash entry, oldest first. */
  trashed(signal?: AbortSignal): Promise<TrashEntry[]>;
  /** Removes the trash entries with a stamp before `before` (of `repo` only when given); the ones removed. */
  purge(before: string, repo?: string, signal?: AbortSignal): Promise<TrashEntry[]>;
  close(): Promise<void>;
}
