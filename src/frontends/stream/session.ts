import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { AccessPolicy } from '../../auth/access.js';
import type { BackendStream, StreamBackendClient } from '../../backends/types.js';
import type { Backend, Cluster, ForwardResult } from '../../cluster/cluster.js';
import { BackendUnavailableError, WriteInterruptedError } from '../../errors.js';
import { ReceivePackRequestParser, type ReceivePackRequest } from '../../protocol/receive-pack-request.js';
import type { Service } from '../../protocol/request.js';
import { describeForLog, toClientError } from '../error-map.js';
import { HeldResponse } from '../held-response.js';
import { clientCapabilities, rejectionBytes } from '../rejection.js';

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
}

/**
 * Serves one Git service request over a stateful transport, with the same
 * cluster semantics as smart HTTP: reads from a leader, pushes under the write
 * lock with the report held until the version is recorded.
 */
export async function serveStream(deps: StreamDeps, req: StreamRequest, channel: ClientChannel): Promise<Record<string, unknown>> {
  const started = performance.now();
  const observe = (outcome: string, bytes: number): void =>
    deps.cluster.observer.request({ transport: req.transport, service: req.service, outcome, seconds: (performance.now() - started) / 1000, bytes });
  try {
    const fields = await serveStreamOnce(deps, req, channel);
    observe(String(fields.outcome ?? 'unknown'), Number(fields.bytes ?? 0));
    // The front end's one log line per request names the user on every transport.
    return { user: req.user, bytes: 0, ...fields };
  } catch (err) {
    observe(toClientError(err).code, 0);
    throw err;
  }
}

async function serveStreamOnce(deps: StreamDeps, req: StreamRequest, channel: ClientChannel): Promise<Record<string, unknown>> {
  // Authorization before anything touches the cluster (no Redis, no lock, no backend).
  // No read access gets the very answer of a missing repository.
  const denied = deps.access.denial(deps.access.identify(req.user, req.authenticated ?? false), req.repo, req.service);
  if (denied) {
    deps.log.info({ repo: req.repo, user: req.user, service: req.service }, 'access denied');
    return refuse(deps, channel, denied);
  }
  const accepts = (b: Backend): boolean => (deps.clients.get(b.id)?.length ?? 0) > 0;
  if (req.service === 'git-receive-pack') return serveWrite(deps, req, channel, accepts);
  let route;
  try {
    route = await deps.cluster.routeRead(req.repo, accepts);
  } catch (err) {
    return refuse(deps, channel, err);
  }
  for (const backend of route.candidates) {
    let stream: BackendStream;
    try {
      stream = await open(deps, backend, req);
    } catch (err) {
      if (err instanceof BackendUnavailableError && !err.bytesSent) {
        deps.cluster.health.markDown(backend.id);
        continue;
      }
      return refuse(deps, channel, err);
    }
    const { exitCode, bytes } = await relay(stream, channel, channel.output);
    await channel.finish(exitCode);
    return { backend: backend.id, version: route.version, exitCode, bytes, outcome: exitCode === 0 ? 'ok' : 'backend-error' };
  }
  return refuse(deps, channel, deps.cluster.unreachable(route));
}

async function serveWrite(deps: StreamDeps, req: StreamRequest, channel: ClientChannel, accepts: (b: Backend) => boolean): Promise<Record<string, unknown>> {
  let request: ReceivePackRequest | undefined;
  let advertised = false;
  let sink: HeldResponse | undefined;
  let exitCode = 0;
  let pushedBytes = 0;

  const forward = async (target: Backend, signal: AbortSignal): Promise<ForwardResult> => {
    const stream = await open(deps, target, req);
    advertised = true;
    sink = new HeldResponse(channel.output, { advertisement: true });
    const parser = new ReceivePackRequestParser({ maxCommands: deps.maxCommands });
    const held = sink;
    let inputEnded = false;
    // Reads the command list as it passes (gitprotocol-pack "Reference Update Request").
    const watch = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        pushedBytes += chunk.length;
        try {
          if (!request) {
            request = parser.write(chunk);
            if (request) held.setSideband(clientCapabilities(request.capabilities).sideband);
          }
          callback(null, chunk);
        } catch (err) {
          callback(err as Error);
        }
      },
    });
    // Safety rule 2: a lost lock cuts the backend before the pack's last byte.
    const onAbort = (): void => {
      if (!inputEnded) stream.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const upload = feed(channel.input, stream, watch).then((ok) => {
      inputEnded = ok;
    });
    try {
      const result = await relay(stream, channel, held, upload);
      exitCode = result.exitCode;
      if (!request) return { ending: inputEnded ? 'complete' : 'cut', noop: inputEnded };
      return {
        ending: result.complete ? 'complete' : inputEnded ? 'unknown' : 'cut',
        report: held.report(),
        bytes: pushedBytes,
        commands: request.commands,
        noop: request.commands.length === 0,
      };
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  };

  try {
    const outcome = await deps.cluster.write({ repo: req.repo, user: req.user, transport: req.transport, accepts }, forward);
    if (outcome.kind === 'interrupted') throw new WriteInterruptedError(req.repo, outcome.backend);
    channel.output.write(sink!.heldBytes());
    await channel.finish(exitCode);
    return { backend: outcome.backend, outcome: outcome.kind, bytes: pushedBytes };
  } catch (err) {
    if (!advertised) return refuse(deps, channel, err);
    const e = toClientError(err);
    deps.log[e.level]({ repo: req.repo, code: e.code, err: describeForLog(err) }, 'push refused');
    if (request && !channel.output.destroyed) {
      channel.output.write(rejectionBytes(request.commands.map((c) => c.ref), clientCapabilities(request.capabilities), e.message));
    }
    await channel.finish(1);
    return { outcome: e.code };
  }
}

async function open(deps: StreamDeps, backend: Backend, req: StreamRequest): Promise<BackendStream> {
  const clients = deps.clients.get(backend.id) ?? [];
  let last: unknown = new BackendUnavailableError(`backend ${backend.id} has no SSH or git:// endpoint`, backend.id);
  for (const client of clients) {
    try {
      return await client.openService(req.repo, req.service, { protocol: req.protocol });
    } catch (err) {
      last = err;
      if (!(err instanceof BackendUnavailableError && !err.bytesSent)) throw err;
    }
  }
  throw last;
}

/**
 * Pipes one service both ways until the backend's output ends, then waits for
 * its exit status. The client's stderr gets the backend's stderr.
 */
async function relay(
  stream: BackendStream,
  channel: ClientChannel,
  out: Writable,
  upload?: Promise<void>,
): Promise<{ exitCode: number; complete: boolean; bytes: number }> {
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
  }
  channel.input.off('close', onClientGone);
  const code = await stream.exit;
  return { exitCode: complete ? (code ?? 0) : 128, complete, bytes };
}

/**
 * Sends the client's bytes to the backend (through `via` when given). Unlike
 * pipeline(), a backend that closes first does not destroy the client's
 * channel: the exit status must still reach the client. Resolves true when
 * the client's input reached the backend to its end.
 */
function feed(input: Readable, stream: BackendStream, via?: Transform): Promise<boolean> {
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

async function refuse(deps: StreamDeps, channel: ClientChannel, err: unknown): Promise<Record<string, unknown>> {
  const e = toClientError(err);
  deps.log[e.level]({ code: e.code, err: describeForLog(err) }, 'request refused');
  await channel.refuse(e.message);
  return { outcome: e.code };
}
