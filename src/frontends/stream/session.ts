import { Transform } from 'node:stream';
import type { BackendStream } from '../../backends/types.js';
import type { Backend, ForwardResult } from '../../cluster/cluster.js';
import { saysBackendDown } from '../../cluster/health.js';
import type { ForwardHooks } from '../../cluster/types.js';
import { BackendUnavailableError, WriteInterruptedError, type GithaError } from '../../errors.js';
import { ReceivePackRequestParser, type ReceivePackRequest } from '../../protocol/receive-pack-request.js';
import { describeForLog, toClientError } from '../error-map.js';
import { HeldResponse } from '../held-response.js';
import { PushPace, pushCutError } from '../push-pace.js';
import { clientCapabilities, rejectionBytes } from '../rejection.js';
import { feed, open, refuse, relay, type ClientChannel, type StreamDeps, type StreamRequest } from './relay.js';
import { serveUploadPack } from './verified-read.js';
import { StreamCopies } from './fan-out-copies.js';
import type { RequestBudget } from '../held-bytes.js';
import { sidebandReporter, stderrReporter, wantsProgress } from '../wait-progress.js';

export type { ClientChannel, StreamDeps, StreamRequest } from './relay.js';

/**
 * Serves one Git service request over a stateful transport, with the same
 * cluster semantics as smart HTTP: reads from a leader, pushes under the write
 * lock with the report held until the version is recorded.
 */
export async function serveStream(deps: StreamDeps, req: StreamRequest, channel: ClientChannel): Promise<Record<string, unknown>> {
  const started = performance.now();
  const observe = (outcome: string, bytes: number, backend?: unknown): void =>
    deps.cluster.observer.request({ transport: req.transport, service: req.service, outcome, seconds: (performance.now() - started) / 1000, bytes, backend: typeof backend === 'string' ? backend : undefined });
  try {
    const fields = await serveStreamOnce(deps, req, channel);
    observe(String(fields.outcome ?? 'unknown'), Number(fields.bytes ?? 0), fields.backend);
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
  // New work is refused (503's words) while the process holds all it may (src/frontends/held-bytes.ts).
  let budget: RequestBudget | undefined;
  try {
    budget = deps.heldBytes?.open();
  } catch (err) {
    return refuse(deps, channel, err);
  }
  try {
    return await serveRead(deps, req, channel, accepts, budget);
  } finally {
    budget?.release();
  }
}

async function serveRead(deps: StreamDeps, req: StreamRequest, channel: ClientChannel, accepts: (b: Backend) => boolean, budget: RequestBudget | undefined): Promise<Record<string, unknown>> {
  let route;
  try {
    // A wait before the service's first byte can only be told on SSH's stderr (docs/architecture.md "What the Git user sees while githa waits").
    route = await deps.cluster.routeRead(req.repo, accepts, undefined, stderrReporter(channel.errors));
  } catch (err) {
    return refuse(deps, channel, err);
  }
  // upload-pack: its listing is checked against the record before the client gets it (docs/architecture.md "Verified copies").
  if (req.service === 'git-upload-pack') return serveUploadPack(deps, req, channel, route, budget);
  for (const backend of route.candidates) {
    let stream: BackendStream;
    try {
      stream = await open(deps, backend, req);
    } catch (err) {
      if (err instanceof BackendUnavailableError && !err.bytesSent) {
        // A busy backend (a timeout, a reset) is not down for everyone: the probes decide.
        if (saysBackendDown(err)) deps.cluster.health.markDown(backend.id);
        else deps.log.info({ backend: backend.id, err: err.message }, 'backend busy or slow; trying the next copy');
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
  /** Set when githa stopped the push for its pace (docs/security.md "Slow pushes"). */
  let cut: GithaError | undefined;

  const forward = async (target: Backend, signal: AbortSignal, hooks: ForwardHooks): Promise<ForwardResult> => {
    // Fan-out (docs/architecture.md "SSH and git://"): each copy's receive-pack is opened next to the target's.
    const copies = hooks.copies.length > 0 ? new StreamCopies(deps, req, hooks.copies) : undefined;
    let stream;
    try {
      stream = await open(deps, target, req);
    } catch (err) {
      copies?.cut('the target could not be opened');
      await copies?.settled(hooks.stallMs);
      throw err;
    }
    await copies?.ready(hooks.stallMs);
    advertised = true;
    // The lock is held from the advertisement on (docs/architecture.md "SSH and git://"): so is the client's pace watched,
    // silence before the command list included. A cut tears the backend's service down before the pack's end.
    const limits = deps.cluster.config.push;
    const pace = new PushPace(limits, (reason) => {
      cut = pushCutError(reason, limits);
      deps.log.warn({ repo: req.repo, backend: target.id, reason, bytes: pushedBytes }, 'push stopped for its pace; its backend service is cut');
      deps.cluster.observer.pushLimited(reason);
      stream.destroy();
      copies?.cut('the push was stopped for its pace');
    });
    sink = new HeldResponse(channel.output, { advertisement: true });
    const parser = new ReceivePackRequestParser({ maxCommands: deps.maxCommands });
    const held = sink;
    let inputEnded = false;
    // Reads the command list as it passes (gitprotocol-pack "Reference Update Request").
    const watch = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        pushedBytes += chunk.length;
        pace.add(chunk.length);
        try {
          if (!request) {
            request = parser.write(chunk);
            if (request) {
              held.setSideband(clientCapabilities(request.capabilities).sideband);
              copies?.setSideband(clientCapabilities(request.capabilities).sideband);
              // The marker records the commands before the chunk that ends them (and the pack after it) goes on,
              // so an interruption can be resolved by adoption (docs/architecture.md "Verified copies").
              // Not recorded: no copy may take the pack (ForwardHooks.commands); only the target goes on, as without fan-out.
              hooks.commands(request.commands).then(
                (recorded) => {
                  if (!recorded) copies?.cutBeforePack('the marker does not hold the push\'s commands');
                  callback(null, chunk);
                },
                (err: unknown) => callback(err as Error),
              );
              return;
            }
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
      copies?.cut('the write lock was lost');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const onClientGone = (): void => copies?.cut('the client went away');
    channel.input.once('close', onClientGone);
    const sent = copies ? copies.feed(channel.input, stream, watch, hooks.stallMs, deps.log, req.repo) : feed(channel.input, stream, watch);
    const upload = sent.then((ok) => {
      inputEnded = ok;
      if (ok) pace.stop();
    });
    try {
      const result = await relay(stream, channel, held, upload);
      exitCode = result.exitCode;
      // The target's exchange broke off: no copy may take the rest of the push.
      if (!result.complete) copies?.cut(`the target ${target.id} broke off`);
      const copied = copies ? { copies: await copies.settled(hooks.stallMs) } : {};
      if (!request) return { ending: inputEnded ? 'complete' : 'cut', noop: inputEnded, ...copied };
      return {
        ending: result.complete ? 'complete' : inputEnded ? 'unknown' : 'cut',
        report: held.report(),
        bytes: pushedBytes,
        commands: request.commands,
        noop: request.commands.length === 0,
        ...copied,
      };
    } finally {
      pace.stop();
      signal.removeEventListener('abort', onAbort);
      channel.input.off('close', onClientGone);
    }
  };

  // githa's waits: the lock and a catch-up come before the advertisement (SSH's stderr only); the quorum copies
  // after the command list, on band 2 where the client asked for side-band (docs/architecture.md "What the Git user sees while githa waits").
  const onStderr = stderrReporter(channel.errors);
  const onBand2 = sidebandReporter((bytes) => {
    if (!channel.output.destroyed) channel.output.write(bytes);
  });
  const waits = {
    onWait: (r: Parameters<typeof onBand2.onWait>[0]) => {
      if (request && wantsProgress(request.capabilities)) onBand2.onWait(r);
      else if (!request || !request.capabilities.includes('quiet')) onStderr?.onWait(r);
    },
  };
  try {
    const outcome = await deps.cluster.write({ repo: req.repo, user: req.user, transport: req.transport, ip: req.ip, accepts, waits }, forward);
    if (outcome.kind === 'interrupted') throw new WriteInterruptedError(req.repo, outcome.backend);
    // A cut push is never acknowledged, whatever the target held afterwards (docs/architecture.md "A push" 6).
    if (cut) throw cut;
    channel.output.write(sink!.heldBytes());
    await channel.finish(exitCode);
    return { backend: outcome.backend, outcome: outcome.kind, bytes: pushedBytes };
  } catch (err) {
    if (!advertised) return refuse(deps, channel, err);
    const e = toClientError(err);
    deps.log[e.level]({ repo: req.repo, code: e.code, err: describeForLog(err) }, 'push refused');
    if (request && !channel.output.destroyed) {
      channel.output.write(rejectionBytes(request.commands.map((c) => c.ref), clientCapabilities(request.capabilities), e.message));
    } else if (!request && channel.errors && !channel.errors.destroyed) {
      // No command list yet (a client silent after the advertisement): stderr is the only place git shows it.
      channel.errors.write(`githa: ${e.message}\n`);
    }
    await channel.finish(1);
    return { outcome: e.code };
  }
}

