/**
 * Where a front end shows the cluster's waits to the Git user
 * (docs/architecture.md "What the Git user sees while githa waits"): on
 * side-band 2 once the client asked for side-band, on SSH's stderr before any
 * protocol byte can carry it, nowhere otherwise. The data bands are never
 * touched: a progress line is a pkt-line of its own between the backend's.
 */
import type { Writable } from 'node:stream';
import { waitMessage, type WaitReporter } from '../cluster/wait-report.js';
import { encodeProgress } from '../protocol/sideband.js';

/**
 * Whether the client's command list (or upload-pack's wants) asked for
 * multiplexed progress: side-band or side-band-64k, and not `quiet`
 * (gitprotocol-capabilities "quiet": `git push -q` wants no progress).
 */
export function wantsProgress(capabilities: readonly string[]): boolean {
  return (capabilities.includes('side-band-64k') || capabilities.includes('side-band')) && !capabilities.includes('quiet');
}

/** Reports waits as band-2 pkt-lines through `write` (which may decline, e.g. when the client is gone). */
export function sidebandReporter(write: (bytes: Buffer) => void): WaitReporter {
  return { onWait: (r) => write(encodeProgress(waitMessage(r))) };
}

/** Reports waits as plain text on a stderr stream (SSH: git's ssh passes it to the user's terminal as it is). */
export function stderrReporter(errors: Writable | null): WaitReporter | undefined {
  if (!errors) return undefined;
  return {
    onWait: (r) => {
      if (!errors.destroyed && !errors.writableEnded) errors.write(waitMessage(r));
    },
  };
}
