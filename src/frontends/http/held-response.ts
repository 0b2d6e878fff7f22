import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { GithaError } from '../../errors.js';
import { PktLineDecoder, encodePkt, FLUSH_PKT } from '../../protocol/pkt-line.js';
import { ReceivePackResponseReader, type ReportStatus } from '../../protocol/report-status.js';
import { parseSidebandPayload } from '../../protocol/sideband.js';

/**
 * Receives receive-pack's answer from the backend and passes progress (side-band
 * 2) to the client at once, but holds back everything from the first report
 * byte on: the report-status and the closing flush reach the client only after
 * the cluster has recorded the new version (design: "Safety rules" 1, "Ack
 * after commit"). Without side-band the whole answer is the report, so it is all
 * held. When the client has gone, progress is dropped and the answer is still
 * read to its end, so the push can be recorded.
 */
export class HeldResponse extends Writable {
  private readonly decoder = new PktLineDecoder();
  private readonly held: Buffer[] = [];
  private holding: boolean;
  bytes = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly sideband: boolean,
  ) {
    super();
    this.holding = !sideband;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.holding) {
      this.held.push(chunk);
      callback();
      return;
    }
    let out: Buffer[] = [];
    try {
      this.decoder.write(chunk);
      while (!this.holding) {
        const pkt = this.decoder.next();
        if (!pkt) break;
        // gitprotocol-pack: with side-band(-64k), band 1 carries the report's own
        // pkt-lines; band 2 is progress, band 3 a fatal message for the user.
        if (pkt.type === 'data' && parseSidebandPayload(pkt.payload).band !== 1) {
          out.push(encodePkt(pkt.payload));
          continue;
        }
        this.holding = true;
        this.held.push(pkt.type === 'flush' ? FLUSH_PKT : pkt.type === 'data' ? encodePkt(pkt.payload) : Buffer.alloc(0));
        this.held.push(this.decoder.rest());
      }
    } catch (err) {
      callback(err instanceof GithaError ? err : new Error(String(err)));
      return;
    }
    if (out.length === 0 || this.res.destroyed) {
      callback();
      return;
    }
    const data = Buffer.concat(out);
    out = [];
    if (this.res.write(data)) callback();
    else {
      const done = (): void => {
        this.res.off('drain', done);
        this.res.off('close', done);
        callback();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    }
  }

  /** The held bytes, exactly as the backend sent them (modulo pkt-line hex case). */
  heldBytes(): Buffer {
    return Buffer.concat(this.held);
  }

  /** The report-status in the held bytes, or undefined when there is none or it is garbled. */
  report(): ReportStatus | undefined {
    try {
      const reader = new ReceivePackResponseReader(this.sideband);
      reader.write(this.heldBytes());
      for (let ev = reader.next(); ev; ev = reader.next()) if (ev.type === 'report') return ev.report;
    } catch {
      return undefined;
    }
    return undefined;
  }
}
