/**
 * githa as a Git client of one backend over a stateful transport (an SSH exec
 * channel or a git:// connection): the BackendClient operations built on
 * `openService()`, which gives the byte streams of a running
 * `git-upload-pack` / `git-receive-pack` as if it were a local process.
 *
 * What real servers do (checked against git 2.39 over OpenSSH and git daemon):
 *
 * - protocol v2 (upload-pack with GIT_PROTOCOL=version=2): the server speaks
 *   first (capability advertisement, flush), then answers one command per
 *   request. On a stateful connection the session ends with an empty request,
 *   a lone flush-pkt (what git's own client sends; closing stdin works too).
 *   githa sends the flush, then closes its side and waits for the exit.
 * - a server that ignores GIT_PROTOCOL (sshd without `AcceptEnv GIT_PROTOCOL`,
 *   the default on most systems) answers with a v0 ref advertisement instead;
 *   ls-refs and fetch then fall back to v0 (the advertisement itself, and a
 *   v0 want/have/done negotiation without multi_ack).
 * - receive-pack is v0 only; an empty command list (a lone flush) ends it
 *   cleanly without touching anything.
 * - a missing repository: over SSH upload-pack/receive-pack write nothing on
 *   stdout, `fatal: '<path>' does not appear to be a git repository` on
 *   stderr, and exit with 128; git daemon answers with one packet
 *   `ERR no such repository: <path>` (`--informative-errors`) or `ERR access
 *   denied or repository not exported: <path>` (the default), then closes.
 *   Both are "no such repository" (null) here.
 *
 * Streams are never buffered whole: reads pull one chunk at a time (the
 * transport is paused meanwhile, so a slow consumer slows the backend down),
 * writes wait for 'drain'. Every wait for the backend is bounded by
 * `timeoutMs` of inactivity. Any failure tears the stream down.
 */
import { BackendProtocolError, BackendUnavailableError, GithaError, RemoteFatalError } from '../errors.js';
import { parseAdvertisement, type RefAdvertisement } from '../protocol/advertisement.js';
import { capabilityValue } from '../protocol/capabilities.js';
import { parseCapabilityAdvertisement, type V2Capabilities } from '../protocol/capability-advertisement.js';
import { AcknowledgmentsReader, encodeHaveRequest } from '../protocol/acknowledgments.js';
import { encodeFetchRequest, FetchResponseReader } from '../protocol/fetch.js';
import { encodeLsRefsRequest, parseLsRefsResponse } from '../protocol/ls-refs.js';
import { encodePkt, errPktMessage, FLUSH_PKT, isErrPkt, type Pkt, pktText } from '../protocol/pkt-line.js';
import { encodeReceivePackRequest, type RefCommand } from '../protocol/receive-pack-request.js';
import { ReceivePackResponseReader, type ReportStatus } from '../protocol/report-status.js';
import { BAND_DATA, BAND_ERROR, parseSidebandPayload } from '../protocol/sideband.js';
import { AGENT } from '../version.js';
import type { BackendStream, OpenServiceOptions, RefTip, StreamBackendClient, StreamService } from './types.js';
import { Session } from './stream-session.js';

/**
 * The BackendClient operations over `openService()`; SshBackendClient and
 * GitDaemonBackendClient only provide the transport.
 */
export abstract class StreamGitClient implements StreamBackendClient {
  abstract readonly transport: 'ssh' | 'git';

  /**
   * @param id the backend's id (in every error)
   * @param timeoutMs longest wait for the backend at any one point (connect,
   *   each answer, each write to drain, the exit)
   */
  protected constructor(
    readonly id: string,
    protected readonly timeoutMs: number,
  ) {}

  abstract openService(repo: string, service: StreamService, options?: OpenServiceOptions): Promise<BackendStream>;
  abstract close(): Promise<void>;
  /**
   * BackendClient.probe: SshBackendClient and GitDaemonBackendClient check
   * their own server (src/backends/probe.ts). A transport without a probe is
   * reported down rather than guessed up.
   */
  async probe(_signal?: AbortSignal): Promise<void> {
    throw new BackendUnavailableError(`backend ${this.id}: no health probe for the ${this.transport} transport`, this.id);
  }

  async listRefs(repo: string, signal?: AbortSignal): Promise<RefTip[] | null> {
    const s = await this.start(repo, 'git-upload-pack', 'version=2', signal);
    try {
      const first = await s.readFirstMessage();
      if (first === null) return null;
      let refs: RefTip[];
      if (isV2(first)) {
        const caps = s.parse(() => parseCapabilityAdvertisement(first));
        if (!caps.capabilities.has('ls-refs')) throw s.protocolError('its upload-pack offers no ls-refs');
        await s.write(encodeLsRefsRequest({ agent: AGENT, symrefs: true, ...objectFormat(caps) }));
        const answer = await s.readMessage('the ls-refs answer');
        refs = s.parse(() => parseLsRefsResponse(answer)).map((e) => ({ name: e.name, oid: e.oid, ...(e.symrefTarget !== undefined && e.name !== 'HEAD' ? { symrefTarget: e.symrefTarget } : {}) }));
        await s.write(FLUSH_PKT); // the empty request: end of the v2 session
      } else {
        // v0/v1: the advertisement is the answer; a flush ("no wants") ends upload-pack.
        refs = s.parse(() => parseAdvertisement(first)).refs.map((r) => ({ name: r.name, oid: r.oid }));
        await s.write(FLUSH_PKT);
      }
      await s.finish();
      return refs;
    } catch (err) {
      throw s.fail(err);
    } finally {
      s.dispose();
    }
  }

  async receivePackAdvertisement(repo: string, signal?: AbortSignal): Promise<RefAdvertisement | null> {
    const s = await this.start(repo, 'git-receive-pack', undefined, signal);
    try {
      const first = await s.readFirstMessage();
      if (first === null) return null;
      const adv = s.parse(() => parseAdvertisement(first));
      await s.write(FLUSH_PKT); // an empty command list: receive-pack ends, nothing changes
      await s.finish();
      return adv;
    } catch (err) {
      throw s.fail(err);
    } finally {
      s.dispose();
    }
  }

  async *fetchPack(repo: string, wants: readonly string[], haves: readonly string[], signal?: AbortSignal): AsyncIterable<Buffer> {
    const s = await this.start(repo, 'git-upload-pack', 'version=2', signal);
    try {
      const first = await s.readFirstMessage();
      if (first === null) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
      if (isV2(first)) {
        const caps = s.parse(() => parseCapabilityAdvertisement(first));
        if (!caps.capabilities.has('fetch')) throw s.protocolError('its upload-pack offers no fetch');
        await s.write(
          s.parse(() =>
            encodeFetchRequest({ wants: [...wants], haves: [...haves], done: true, ofsDelta: true, noProgress: true, agent: AGENT, ...objectFormat(caps) }),
          ),
        );
        const reader = new FetchResponseReader();
        reader.write(s.takeBuffered());
        for (;;) {
          for (let ev = s.parse(() => reader.next()); ev; ev = s.parse(() => reader.next())) {
            if (ev.type === 'pack') yield ev.data;
            else if (ev.type === 'end') {
              await s.write(FLUSH_PKT); // end of the v2 session
              await s.finish();
              return;
            }
          }
          const chunk = await s.readChunk();
          if (chunk === null) throw await s.endedEarly('in the middle of the fetch response');
          reader.write(chunk);
        }
      } else {
        yield* this.fetchV0(s, first, wants, haves);
      }
    } catch (err) {
      throw s.fail(err);
    } finally {
      // Also when the consumer stops early (return()): the stream goes.
      s.dispose();
    }
  }

  async hasObjects(repo: string, tip: string, oids: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    if (oids.length === 0) return new Set();
    const s = await this.start(repo, 'git-upload-pack', 'version=2', signal);
    try {
      const first = await s.readFirstMessage();
      if (first === null) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
      // No v2 negotiation to ask with: "none" (BackendClient.hasObjects). The flush ("no wants") ends upload-pack.
      if (!isV2(first)) {
        await s.write(FLUSH_PKT);
        await s.finish();
        return new Set();
      }
      const caps = s.parse(() => parseCapabilityAdvertisement(first));
      if (!caps.capabilities.has('fetch')) throw s.protocolError('its upload-pack offers no fetch');
      await s.write(s.parse(() => encodeHaveRequest(tip, oids, { agent: AGENT, ...objectFormat(caps) })));
      const reader = new AcknowledgmentsReader();
      reader.write(s.takeBuffered());
      for (;;) {
        const got = s.parse(() => reader.result());
        // Known: the channel is closed (dispose below) without reading a pack that may follow `ready`.
        if (got) return got.acked;
        const chunk = await s.readChunk();
        if (chunk === null) throw await s.endedEarly('in the middle of its acknowledgments');
        reader.write(chunk);
      }
    } catch (err) {
      throw s.fail(err);
    } finally {
      s.dispose();
    }
  }

  /**
   * v0 fetch on a server that ignored GIT_PROTOCOL: want lines (capabilities
   * on the first), flush, have lines, done. Without multi_ack the answer is
   * one "ACK <oid>" or "NAK", then the pack on side-band until a flush.
   */
  private async *fetchV0(s: Session, first: Pkt[], wants: readonly string[], haves: readonly string[]): AsyncGenerator<Buffer> {
    const adv = s.parse(() => parseAdvertisement(first));
    const offered = adv.capabilities;
    const band = offered.includes('side-band-64k') ? 'side-band-64k' : offered.includes('side-band') ? 'side-band' : undefined;
    if (band === undefined) throw s.protocolError('its upload-pack offers no side-band');
    if (wants.length === 0) {
      await s.write(FLUSH_PKT);
      await s.finish();
      return;
    }
    const caps = [band, ...['ofs-delta', 'no-progress'].filter((c) => offered.includes(c))];
    if (offered.some((c) => c.startsWith('agent='))) caps.push(`agent=${AGENT}`);
    const format = capabilityValue(offered, 'object-format');
    if (format !== undefined) caps.push(`object-format=${format}`);
    const lines: Buffer[] = wants.map((oid, i) => encodePkt(i === 0 ? `want ${oid} ${caps.join(' ')}\n` : `want ${oid}\n`));
    lines.push(FLUSH_PKT);
    for (const oid of haves) lines.push(encodePkt(`have ${oid}\n`));
    lines.push(encodePkt('done\n'));
    await s.write(s.parse(() => Buffer.concat(lines)));
    let inPack = false;
    for (;;) {
      const pkt = await s.readPkt();
      if (pkt === null) throw await s.endedEarly('in the middle of the fetch response');
      if (pkt.type === 'flush') {
        if (!inPack) throw s.protocolError('ended its fetch response before the pack');
        await s.finish();
        return;
      }
      if (pkt.type !== 'data') throw s.protocolError(`sent an unexpected ${pkt.type} packet in its fetch response`);
      if (isErrPkt(pkt.payload)) throw new RemoteFatalError(errPktMessage(pkt.payload));
      if (!inPack) {
        const text = pktText(pkt.payload);
        if (text === 'NAK' || text.startsWith('ACK ')) continue;
        inPack = true;
      }
      const frame = s.parse(() => parseSidebandPayload(pkt.payload));
      if (frame.band === BAND_DATA) yield frame.payload;
      else if (frame.band === BAND_ERROR) throw new RemoteFatalError(pktText(frame.payload));
    }
  }

  async pushPack(
    repo: string,
    commands: readonly RefCommand[],
    capabilities: readonly string[],
    pack: AsyncIterable<Buffer> | null,
    signal?: AbortSignal,
  ): Promise<ReportStatus> {
    const s = await this.start(repo, 'git-receive-pack', undefined, signal);
    let sourceError: { err: unknown } | undefined;
    try {
      const first = await s.readFirstMessage();
      if (first === null) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
      s.parse(() => parseAdvertisement(first));
      if (commands.length === 0) {
        await s.write(FLUSH_PKT);
        await s.finish();
        return { unpackOk: true, refs: [] };
      }
      const head = s.parse(() => encodeReceivePackRequest([...commands], [...capabilities]));
      const sideband = capabilities.includes('side-band-64k') || capabilities.includes('side-band');
      // The answer is read while the pack is sent: progress or an early fatal
      // error never stalls the backend, and a report wins over a write error.
      const answer = readReport(s, sideband);
      // Marks the rejection handled for the paths that never await `answer` (the pack
      // source failed); every other path awaits it below and sees the error there.
      answer.catch(() => {});
      try {
        await s.write(head);
        if (pack) {
          s.sending = true;
          const it = pack[Symbol.asyncIterator]();
          let complete = false;
          let pending = false;
          try {
            for (;;) {
              // Waits for the source, but not past a failure of the target.
              const next = await Promise.race([
                it.next().then(
                  (r) => ({ r }),
                  (err: unknown) => ({ err }),
                ),
                s.whenFailed().then(() => null),
              ]);
              if (next === null) {
                pending = true;
                s.checkFailed();
              } else if ('err' in next) {
                sourceError = { err: next.err };
                throw next.err;
              } else {
                if (next.r.done) break;
                await s.write(next.r.value);
              }
            }
            complete = true;
          } finally {
            // Stops the source (e.g. the leader's fetch) when the push failed. With a
            // read still pending, the source stops when that read ends (its own timeout).
            if (!complete) {
              // The push has failed already and that error is what we report; the source
              // failing to stop adds nothing.
              const stopped = it.return?.(undefined).catch(() => undefined);
              if (!pending) await stopped;
            }
          }
          s.sending = false;
        }
        s.end();
      } catch (err) {
        if (sourceError) throw err;
        // The backend stopped reading: its report (e.g. "unpack failed") says more than EPIPE.
        // Without a report, the write error below is the one to raise.
        const report = await answer.catch(() => undefined);
        if (report) return report;
        throw err;
      }
      const report = await answer;
      await s.finish();
      return report;
    } catch (err) {
      // A failed source cuts the push (receive-pack dies in its quarantine) and is reported as is.
      if (sourceError) {
        s.destroy();
        throw sourceError.err;
      }
      throw s.fail(err);
    } finally {
      s.dispose();
    }
  }

  /** Opens the service and wraps it; connection failures are BackendUnavailableError (bytesSent=false). */
  private async start(repo: string, service: StreamService, protocol: string | undefined, signal: AbortSignal | undefined): Promise<Session> {
    signal?.throwIfAborted();
    let stream: BackendStream;
    try {
      stream = await this.openService(repo, service, { protocol, signal });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof GithaError) throw err;
      throw new BackendUnavailableError(`backend ${this.id} is unreachable: ${(err as Error).message}`, this.id, { cause: err });
    }
    return new Session(this.id, `${service} ${repo}`, stream, this.timeoutMs, signal);
  }
}

/** Reads receive-pack's answer to a push: the report (or its absence, or a fatal error). */
async function readReport(s: Session, sideband: boolean): Promise<ReportStatus> {
  const reader = new ReceivePackResponseReader(sideband);
  let report: ReportStatus | undefined;
  reader.write(s.takeBuffered());
  for (;;) {
    for (let ev = s.parse(() => reader.next()); ev; ev = s.parse(() => reader.next())) {
      if (ev.type === 'report') report = ev.report;
      else if (ev.type === 'fatal') throw s.protocolError(`refused the push: ${ev.message}`);
      else if (ev.type === 'end') {
        if (!report) throw s.protocolError('sent no report-status');
        return report;
      }
    }
    const chunk = await s.readChunk();
    if (chunk === null) {
      if (report) return report;
      throw await s.endedEarly('before its report-status');
    }
    reader.write(chunk);
  }
}

function isV2(first: Pkt[]): boolean {
  const p = first[0];
  return p !== undefined && p.type === 'data' && pktText(p.payload) === 'version 2';
}

function objectFormat(caps: V2Capabilities): { objectFormat?: string } {
  const format = caps.capabilities.get('object-format');
  return typeof format === 'string' && format !== 'sha1' ? { objectFormat: format } : {};
}

