/**
 * receive-pack's answer to a push (gitprotocol-pack "Report Status"):
 *
 *   report-status  = unpack-status 1*(command-status) flush-pkt
 *   unpack-status  = PKT-LINE("unpack" SP ("ok" / error-msg))
 *   command-status = PKT-LINE("ok" SP refname) / PKT-LINE("ng" SP refname SP error-msg)
 *   ; report-status-v2: an "ok" may be followed by option lines
 *   option-line    = PKT-LINE("option" SP ("refname" SP refname / "old-oid" SP obj-id /
 *                                          "new-oid" SP obj-id / "forced-update"))
 *
 * With side-band(-64k) the report's pkt-lines are themselves the data of band
 * 1 (split across band-1 packets anywhere), and an outer flush ends the
 * response; without side-band they come directly.
 */
import { LimitExceededError, ProtocolSyntaxError, RemoteFatalError } from '../errors.js';
import { parseObjectId } from './object-id.js';
import { checkWireRefName } from './ref-name.js';
import { encodePkt, errPktMessage, FLUSH_PKT, isErrPkt, type Pkt, PktLineDecoder, pktText } from './pkt-line.js';
import { BAND_DATA, BAND_ERROR, BAND_PROGRESS, encodeSideband, parseSidebandPayload } from './sideband.js';

export interface RefStatus {
  ref: string;
  ok: boolean;
  reason?: string;
  options?: { refname?: string; oldOid?: string; newOid?: string; forcedUpdate?: boolean };
}

export interface ReportStatus {
  unpackOk: boolean;
  unpackError?: string;
  refs: RefStatus[];
}

/**
 * Parses a report's pkt-lines, without the final flush (a trailing flush is
 * tolerated). An "ERR" packet raises RemoteFatalError.
 */
export function parseReportStatus(pkts: Pkt[]): ReportStatus {
  const report: ReportStatus = { unpackOk: false, refs: [] };
  pkts.forEach((pkt, i) => {
    if (pkt.type !== 'data') {
      if (pkt.type === 'flush' && i === pkts.length - 1 && i > 0) return;
      throw new ProtocolSyntaxError(`unexpected ${pkt.type} packet in report-status`);
    }
    if (isErrPkt(pkt.payload)) throw new RemoteFatalError(errPktMessage(pkt.payload));
    const text = pktText(pkt.payload);
    if (i === 0) {
      if (!text.startsWith('unpack ')) throw new ProtocolSyntaxError('report-status must start with "unpack"');
      const result = text.slice(7);
      report.unpackOk = result === 'ok';
      if (!report.unpackOk) report.unpackError = result;
      return;
    }
    if (text.startsWith('ok ')) {
      report.refs.push({ ref: checkWireRefName(text.slice(3), 'report-status'), ok: true });
    } else if (text.startsWith('ng ')) {
      const rest = text.slice(3);
      const sp = rest.indexOf(' ');
      const status: RefStatus = { ref: checkWireRefName(sp < 0 ? rest : rest.slice(0, sp), 'report-status'), ok: false };
      if (sp >= 0) status.reason = rest.slice(sp + 1);
      report.refs.push(status);
    } else if (text.startsWith('option ')) {
      // Options describe the ref status line before them (git's send-pack does the same).
      const last = report.refs[report.refs.length - 1];
      if (last === undefined) throw new ProtocolSyntaxError('report-status option before any ref status');
      applyOption(last, text.slice(7));
    } else {
      throw new ProtocolSyntaxError('invalid report-status line');
    }
  });
  if (pkts.length === 0) throw new ProtocolSyntaxError('empty report-status');
  return report;
}

function applyOption(status: RefStatus, option: string): void {
  const sp = option.indexOf(' ');
  const key = sp < 0 ? option : option.slice(0, sp);
  const value = sp < 0 ? undefined : option.slice(sp + 1);
  const options = (status.options ??= {});
  if (key === 'forced-update' && value === undefined) options.forcedUpdate = true;
  else if (key === 'refname' && value !== undefined) options.refname = checkWireRefName(value, 'report-status option');
  else if (key === 'old-oid' && value !== undefined) options.oldOid = parseObjectId(value, 'report-status option');
  else if (key === 'new-oid' && value !== undefined) options.newOid = parseObjectId(value, 'report-status option');
  // Unknown options are ignored, for forward compatibility.
}

/** Replaces what would break a line (LF, CR, NUL) in a free-text field. */
function oneLine(s: string): string {
  return s.replace(/[\0\r\n]/g, ' ');
}

/** Encodes a report with its final flush, not multiplexed. */
export function encodeReportStatus(r: ReportStatus): Buffer {
  const parts = [encodePkt(`unpack ${r.unpackOk ? 'ok' : oneLine(r.unpackError ?? 'failed') || 'failed'}\n`)];
  for (const s of r.refs) {
    const ref = checkWireRefName(s.ref, 'report-status');
    if (!s.ok) {
      parts.push(encodePkt(s.reason === undefined ? `ng ${ref}\n` : `ng ${ref} ${oneLine(s.reason)}\n`));
      continue;
    }
    parts.push(encodePkt(`ok ${ref}\n`));
    const o = s.options;
    if (o?.refname !== undefined) parts.push(encodePkt(`option refname ${checkWireRefName(o.refname, 'option')}\n`));
    if (o?.oldOid !== undefined) parts.push(encodePkt(`option old-oid ${parseObjectId(o.oldOid, 'option')}\n`));
    if (o?.newOid !== undefined) parts.push(encodePkt(`option new-oid ${parseObjectId(o.newOid, 'option')}\n`));
    if (o?.forcedUpdate === true) parts.push(encodePkt('option forced-update\n'));
  }
  parts.push(FLUSH_PKT);
  return Buffer.concat(parts);
}

/**
 * The report as receive-pack sends it with side-band(-64k): the report's
 * pkt-lines inside band 1, then the outer flush.
 */
export function encodeReportStatusSideband(r: ReportStatus): Buffer {
  return Buffer.concat([encodeSideband(BAND_DATA, encodeReportStatus(r)), FLUSH_PKT]);
}

/**
 * githa's own refusal of a push: "ng <ref> <reason>" for every ref. When
 * `unpackOk` is false, the unpack line carries the reason too.
 */
export function encodeRejections(refs: string[], reason: string, unpackOk = true): Buffer {
  return encodeReportStatus({
    unpackOk,
    ...(unpackOk ? {} : { unpackError: reason }),
    refs: refs.map((ref) => ({ ref, ok: false, reason })),
  });
}

export type ReceivePackResponseEvent =
  | { type: 'progress'; data: Buffer }
  | { type: 'report'; report: ReportStatus }
  | { type: 'fatal'; message: string }
  | { type: 'end' };

/**
 * Reads receive-pack's response to a push (after the ref advertisement)
 * incrementally. With side-band: band 2 is progress, band 3 a fatal error,
 * band 1 the nested report; an outer flush ends it. Without side-band: the
 * report's packets directly, its flush ending the response. An "ERR" packet
 * becomes a 'fatal' event. Nothing is returned after 'fatal' or 'end'.
 */
export class ReceivePackResponseReader {
  private readonly outer = new PktLineDecoder();
  private readonly inner = new PktLineDecoder();
  private readonly reportPkts: Pkt[] = [];
  private readonly maxReportLines: number;
  private readonly maxReportBytes: number;
  private reportBytes = 0;
  private reported = false;
  private finished = false;
  private readonly queue: ReceivePackResponseEvent[] = [];

  constructor(
    private readonly sideband: boolean,
    opts?: { maxReportLines?: number; maxReportBytes?: number },
  ) {
    this.maxReportLines = opts?.maxReportLines ?? 300_000;
    this.maxReportBytes = opts?.maxReportBytes ?? 64 * 1024 * 1024;
  }

  write(chunk: Buffer): void {
    this.outer.write(chunk);
  }

  /** Bytes after the end of the response (or not yet parsed), and clears them. */
  rest(): Buffer {
    return this.outer.rest();
  }

  next(): ReceivePackResponseEvent | undefined {
    // Each iteration consumes one outer packet, so this ends when the buffer does.
    while (this.queue.length === 0 && !this.finished) {
      const pkt = this.outer.next();
      if (pkt === undefined) break;
      if (this.sideband) this.onSidebandPkt(pkt);
      else this.onReportPkt(pkt);
    }
    return this.queue.shift();
  }

  private onSidebandPkt(pkt: Pkt): void {
    if (pkt.type === 'flush') {
      // The outer flush: the nested report must be complete (or absent, when
      // report-status was not requested).
      if (this.inner.bufferedLength > 0 || this.reportPkts.length > 0) {
        throw new ProtocolSyntaxError('receive-pack response ended inside report-status');
      }
      this.finish({ type: 'end' });
      return;
    }
    if (pkt.type !== 'data') throw new ProtocolSyntaxError(`unexpected ${pkt.type} packet in the push response`);
    if (isErrPkt(pkt.payload)) {
      this.finish({ type: 'fatal', message: errPktMessage(pkt.payload) });
      return;
    }
    const frame = parseSidebandPayload(pkt.payload);
    if (frame.band === BAND_PROGRESS) {
      this.queue.push({ type: 'progress', data: frame.payload });
    } else if (frame.band === BAND_ERROR) {
      this.finish({ type: 'fatal', message: pktText(frame.payload) });
    } else {
      if (this.reported && frame.payload.length > 0) {
        throw new ProtocolSyntaxError('data after report-status');
      }
      this.inner.write(frame.payload);
      for (let inner = this.inner.next(); inner !== undefined && !this.finished; inner = this.inner.next()) {
        this.onReportPkt(inner);
        if (this.reported && this.inner.bufferedLength > 0) throw new ProtocolSyntaxError('data after report-status');
      }
    }
  }

  /** One packet of the report itself (nested in band 1, or direct). */
  private onReportPkt(pkt: Pkt): void {
    if (this.reported) throw new ProtocolSyntaxError('data after report-status');
    if (pkt.type === 'data' && isErrPkt(pkt.payload)) {
      this.finish({ type: 'fatal', message: errPktMessage(pkt.payload) });
      return;
    }
    if (pkt.type !== 'flush') {
      this.reportBytes += pkt.type === 'data' ? pkt.payload.length : 0;
      if (this.reportPkts.length >= this.maxReportLines || this.reportBytes > this.maxReportBytes) {
        throw new LimitExceededError('report-status too long');
      }
      this.reportPkts.push(pkt);
      return;
    }
    const report = parseReportStatus(this.reportPkts);
    this.reportPkts.length = 0;
    this.reported = true;
    this.queue.push({ type: 'report', report });
    if (!this.sideband) this.finish({ type: 'end' });
  }

  private finish(event: ReceivePackResponseEvent): void {
    this.queue.push(event);
    this.finished = true;
  }
}
