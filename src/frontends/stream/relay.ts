/**
 * The byte plumbing of a stateful session (SSH exec channel, git:// socket)
 * shared by its read and write paths (src/frontends/stream/session.ts,
 * verified-read.ts): the client's end, opening a backend's service, relaying
 * both ways, refusing.
 */
import type { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { AccessPolicy } from '../../auth/access.js';
import type { BackendStream, StreamBackendClient } from '../../backends/types.js';
import type { Backend, Cluster } from '../../cluster/cluster.js';
import { BackendUnavailableError } from '../../errors.js';
import type { Service } from '../../protocol/request.js';
import { describeForLog, toClientError } from '../error-map.js';
import type { HeldBytes } from '../held-bytes.js';

/** A git client's end of a stateful connection: an SSH exec channel or a git:// socket. */
export interface ClientChannel {
  /** Bytes from the client (the service's stdin). */
  readonly input: Readable;
  /** Bytes to the client (the service's stdout). */
  readonly output: Writable;
  /** The service's stderr (SSH); null on git://. */
  readonly errors: Writable | null;
  /**
   * Ends the exchange, in this order: everything written to `output` is
   * handed to the transport, then the exit status (SSH), then end-of-stream.
   */
  finish(exitCode: number): Promise<void>;
  /** Tells a client that githa refused it before any protocol byte was sent. */
  refuse(message: string): Promise<void>;
}

export interface StreamRequest {
  repo: string;
  service: Service;
  /** GIT_PROTOCOL (SSH env) or the git:// extra parameters, passed on. */
  protocol: string | undefined;
  user: string;
  /** True when githa verified `user` (an SSH key); false for git:// (the anonymous identity). */
  authenticated?: boolean;
  transport: 'ssh' | 'git';
  /** The client's address (src/frontends/proxy-listener.ts clientAddress), for the push log. */
  ip?: string | undefined;
}

export interface StreamDeps {
  cluster: Cluster;
  /** Per backend id: its stateful-transport clients, in order of preference for this front end. */
  clients: ReadonlyMap<string, readonly StreamBackendClient[]>;
  log: Logger;
  maxCommands: number;
  /**
   * Access rules (docs/security.md "Authorization"). Required: a front end
   * built without them must not serve everything (fail closed). A
   * configuration without an `access` section compiles to allow-all on purpose.
   */
  access: AccessPolicy;
  /** read.maxHeldListingBytes: the largest listing held to be checked (src/frontends/stream/verified-read.ts); default 32 MiB. */
  maxHeldListingBytes?: number;
  /**
   * read.maxReplayBodyBytes: the largest first v2 command of a client held to
   * be sent widened or replayed on another leader (verified-read.ts); a larger
   * one goes to the backend as it is. Default 1 MiB.
   */
  maxHeldRequestBytes?: number;
  /** The process's accountant of held bytes (src/frontends/held-bytes.ts), shared with HTTP: a held listing counts against it. */
  heldBytes?: HeldBytes;
}

/** Opens the service on the backend; `signal` (the client gone) gives up a wait for a backend channel slot. */
export async function open(deps: StreamDeps, backend: Backend, req: StreamRequest, signal?: AbortSignal): Promise<BackendStream> {
  const clients = deps.clients.get(backend.id) ?? [];
  let last: unknown = new BackendUnavailableError(`backend ${backend.id} has no SSH or git:// endpoint`, backend.id);
  for (const client of clients) {
    try {
      return await client.openService(req.repo, req.service, { protocol: req.protocol, signal });
    } catch (err) {
      last = err;
      if (!(err instanceof BackendUnavailableError && !err.bytesSent)) throw err;
    }
  }
  throw last;
}

/**
 * Pipes one service both ways until the backend's output ends, then waits for
 * its exit status (`status`: null where the transport has none, git://, or
 * the service ended without one). The client's stderr gets the backend's
 * stderr. With `upload`, the caller sends the client's bytes itself.
 */
export async function relay(
  stream: BackendStream,
  channel: ClientChannel,
  out: Writable,
  upload?: Promise<void>,
): Promise<{ exitCode: number; status: number | null; complete: boolean; bytes: number }> {
  let bytes = 0;
  const onClientGone = (): void => stream.destroy();
  channel.input.once('close', onClientGone);
  if (!upload) void feed(channel.input, stream);
  if (stream.stderr) {
    if (channel.errors) stream.stderr.pipe(channel.errors, { end: false });
    else stream.stderr.resume();
  }
  stream.stdout.on('data', (c: Buffer) => {
    bytes += c.length;
  });
  let complete = true;
  try {
    await pipeline(stream.stdout, out, { end: out !== channel.output });
  } catch {
    complete = false;
    // The client went (or the backend broke): close the backend's service through the
    // stream's own destroy, which also frees its channel slot (src/backends/ssh.ts).
    stream.destroy();
  }
  channel.input.off('close', onClientGone);
  const code = await stream.exit;
  return { exitCode: complete ? (code ?? 0) : 128, status: code, complete, bytes };
}

/**
 * Sends the client's bytes to the backend (through `via` when given). Unlike
 * pipeline(), a backend that closes first does not destroy the client's
 * channel: the exit status must still reach the client. Resolves true when
 * the client's input reached the backend to its end.
 */
export function feed(input: Readable, stream: BackendStream, via?: Transform): Promise<boolean> {
  return new Promise((resolve) => {
    const target = stream.stdin;
    target.on('error', () => resolve(false));
    target.once('finish', () => resolve(true));
    target.once('close', () => resolve(false));
    if (via) {
      via.on('error', (err) => {
        stream.destroy(err);
        resolve(false);
      });
      input.pipe(via).pipe(target);
    } else {
      input.pipe(target);
    }
  });
}

export async function refuse(deps: StreamDeps, channel: ClientChannel, err: unknown): Promise<Record<string, unknown>> {
  const e = toClientError(err);
  deps.log[e.level]({ code: e.code, err: describeForLog(err) }, 'request refused');
  await channel.refuse(e.message);
  return { outcome: e.code };
}
