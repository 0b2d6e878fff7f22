import type { RefAdvertisement } from '../protocol/advertisement.js';
import type { RefCommand } from '../protocol/receive-pack-request.js';
import type { ReportStatus } from '../protocol/report-status.js';

export interface RefTip {
  readonly name: string;
  readonly oid: string;
}

/**
 * githa as a Git client of one backend, over whichever transport the backend
 * offers (HTTP here; SSH and git:// implement the same interface). Used by the
 * catch-up relay, checksums and health checks; never by client traffic.
 */
export interface BackendClient {
  readonly id: string;
  /** Every ref (protocol v2 ls-refs), or null when the repository does not exist there. */
  listRefs(repo: string, signal?: AbortSignal): Promise<RefTip[] | null>;
  /** receive-pack's ref advertisement (v0), or null when the repository does not exist there. */
  receivePackAdvertisement(repo: string, signal?: AbortSignal): Promise<RefAdvertisement | null>;
  /** One v2 `fetch` with `done`: the raw pack bytes, streamed (gitprotocol-v2 "packfile"). */
  fetchPack(repo: string, wants: readonly string[], haves: readonly string[], signal?: AbortSignal): AsyncIterable<Buffer>;
  /** One receive-pack: the command list, then the pack when given; resolves with the report. */
  pushPack(
    repo: string,
    commands: readonly RefCommand[],
    capabilities: readonly string[],
    pack: AsyncIterable<Buffer> | null,
    signal?: AbortSignal,
  ): Promise<ReportStatus>;
  close(): Promise<void>;
}
