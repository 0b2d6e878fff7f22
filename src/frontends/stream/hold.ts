/**
 * Holding what a stream sends until it can be judged (src/frontends/stream/verified-read.ts):
 * one pkt-line message to its flush, or an answer's first packet.
 */
import type { Readable } from 'node:stream';
import { type HeldMessage, MessageHold } from '../../protocol/held-listing.js';

export type Hold =
  | { kind: 'message'; message: HeldMessage }
  /** The source ended (or failed) before the message's flush. */
  | { kind: 'ended'; bytes: Buffer }
  | { kind: 'over-cap'; bytes: Buffer }
  /** Not pkt-lines. */
  | { kind: 'broken'; bytes: Buffer; detail: string }
  /** The client went away meanwhile. */
  | { kind: 'gone' }
  /** The memory budget refused to hold more (src/frontends/held-bytes.ts): a ServerBusyError. */
  | { kind: 'refused'; error: Error };

/**
 * Reads one pkt-line message (to its flush) from `source`, holding its bytes.
 * Bytes after the flush are put back; the source is left paused for whoever
 * reads it next (a pipe resumes it).
 */
export function holdMessage(source: Readable, maxBytes: number, gone: AbortSignal, onHold?: (bytes: number) => void): Promise<Hold> {
  const hold = new MessageHold(maxBytes);
  return holdUntil<Hold>(
    source,
    gone,
    (chunk, done) => {
      let got: ReturnType<MessageHold['write']>;
      try {
        onHold?.(chunk.length);
      } catch (err) {
        done({ kind: 'refused', error: err as Error });
        return;
      }
      try {
        got = hold.write(chunk);
      } catch (err) {
        done({ kind: 'broken', bytes: hold.held(), detail: (err as Error).message });
        return;
      }
      if (got === undefined) return;
      if (got === 'over-cap') return done({ kind: 'over-cap', bytes: hold.held() });
      // Paused first: unshifting into a flowing stream would hand the bytes straight back to onData.
      done({ kind: 'message', message: got });
      if (got.rest.length > 0) source.unshift(got.rest);
    },
    () => ({ kind: 'ended', bytes: hold.held() }),
  );
}

export type FirstPacket = { kind: 'packet' | 'ended'; bytes: Buffer } | { kind: 'gone' };

/**
 * Reads an answer until its first pkt-line is whole (at most 65520 bytes,
 * gitprotocol-common "pkt-line Format"), or it ends: every byte read so far,
 * the source left paused. Never more than that: a pack is not held.
 */
export function holdFirstPacket(source: Readable, gone: AbortSignal): Promise<FirstPacket> {
  const chunks: Buffer[] = [];
  return holdUntil<FirstPacket>(
    source,
    gone,
    (chunk, done) => {
      chunks.push(chunk);
      const bytes = Buffer.concat(chunks);
      if (bytes.length < 4) return;
      const len = /^[0-9a-f]{4}$/i.test(bytes.toString('latin1', 0, 4)) ? Number.parseInt(bytes.toString('latin1', 0, 4), 16) : 0;
      if (len < 4 || bytes.length >= len) done({ kind: 'packet', bytes });
    },
    () => ({ kind: 'ended', bytes: Buffer.concat(chunks) }),
  );
}

/** Reads `source` until `take` calls `done`, the source ends, or the client goes; the source is left paused. */
function holdUntil<T>(source: Readable, gone: AbortSignal, take: (chunk: Buffer, done: (result: T) => void) => void, ended: () => T): Promise<T | { kind: 'gone' }> {
  return new Promise((resolve) => {
    const done = (result: T | { kind: 'gone' }): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('close', onEnd);
      source.off('error', onEnd);
      gone.removeEventListener('abort', onGone);
      source.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer): void => take(chunk, done);
    const onEnd = (): void => done(ended());
    const onGone = (): void => done({ kind: 'gone' });
    if (gone.aborted) return onGone();
    if (source.readableEnded || source.destroyed) return onEnd();
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('close', onEnd);
    source.once('error', onEnd);
    gone.addEventListener('abort', onGone, { once: true });
    source.resume();
  });
}
