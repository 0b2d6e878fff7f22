import { Writable } from 'node:stream';
import { GithaError, ProtocolSyntaxError } from '../errors.js';
import { PktLineDecoder, encodePktValue } from '../protocol/pkt-line.js';
import { ReceivePackResponseReader, type ReportStatus } from '../protocol/report-status.js';
import { BAND_DATA, parseSidebandPayload } from '../protocol/sideband.js';

/**
 * Receives receive-pack's answer from the backend and passes progress (side-band
 * 2) to the client at once, but holds back everything from the first report
 * byte on: the report-status and the closing flush reach the client only after
 * the cluster has recorded the new version (docs/architecture.md "A push
 * (receive-pack)" 4). Without side-band the whole answer is the report, so it is all
 * held. When the client has gone, progress is dropped and the answer is still
 * read to its end, so the push can be recorded.
 *
 * On stateful transports (SSH, git://) the same stream first carries
 * receive-pack's ref advertisement: with `advertisement: true` everything up
 * to and including its flush-pkt passes straight through. Whether the answer
 * uses side-band is known only once the client's command list has been read:
 * call setSideband() before any byte of the answer can arrive.
 */
export class HeldResponse extends Writable {
  private readonly decoder = new PktLineDecoder();
  private readonly held: Buffer[] = [];
  private holding = false;
  private inAdvertisement: boolean;
  private sideband: boolean | undefined;
  bytes = 0;

  constructor(
    private readonly out: Writable,
    options: { sideband?: boolean; advertisement?: boolean },
  ) {
    super();
    this.inAdvertisement = options.advertisement ?? false;
    if (options.sideband !== undefined) this.setSideband(options.sideband);
  }

  /** Called once the client's capabilities are known (before the answer starts). */
  setSideband(sideband: boolean): void {
    this.sideband = sideband;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.holding) {
      this.held.push(chunk);
      callback();
      return;
    }
    const out: Buffer[] = [];
    try {
      this.decoder.write(chunk);
      while (!this.holding) {
        const pkt = this.decoder.next();
        if (!pkt) break;
        if (this.inAdvertisement) {
          // gitprotocol-pack "Reference Discovery": the advertisement ends with a flush-pkt.
          out.push(encodePktValue(pkt));
          if (pkt.type === 'flush') this.inAdvertisement = false;
          continue;
        }
        if (this.sideband === undefined) throw new ProtocolSyntaxError('receive-pack answered before the command list was complete');
        if (!this.sideband) {
          this.holding = true;
          this.held.push(encodePktValue(pkt));
          this.held.push(this.decoder.rest());
          break;
        }
        // gitprotocol-pack: with side-band(-64k), band 1 carries the report's own
        // pkt-lines; band 2 is progress, band 3 a fatal message for the user.
        if (pkt.type === 'data' && parseSidebandPayload(pkt.payload).band !== BAND_DATA) {
          out.push(encodePktValue(pkt));
          continue;
        }
        this.holding = true;
        this.held.push(encodePktValue(pkt));
        this.held.push(this.decoder.rest());
      }
    } catch (err) {
      callback(err instanceof GithaError ? err : new Error(String(err)));
      return;
    }
    if (out.length === 0 || this.out.destroyed) {
      callback();
      return;
    }
    const data = Buffer.concat(out);
    if (this.out.write(data)) callback();
    else {
      const done = (): void => {
        this.out.off('drain', done);
        this.out.off('close', done);
        callback();
      };
      this.out.on('drain', done);
      this.out.on('close', done);
    }
  }

  /** How many bytes are held (for the request's memory budget, src/frontends/held-bytes.ts). */
  get heldLength(): number {
    return this.held.reduce((n, b) => n + b.length, 0);
  }

  /** The held bytes, exactly as the backend sent them (modulo pkt-line hex case). */
  heldBytes(): Buffer {
    return Buffer.concat(this.held);
  }

  /** The report-status in the held bytes, or undefined when there is none or it is garbled. */
  report(): ReportStatus | undefined {
    try {
      const reader = new ReceivePackResponseReader(this.sideband ?? false);
      reader.write(this.heldBytes());
      for (let ev = reader.next(); ev; ev = reader.next()) if (ev.type === 'report') return ev.report;
    } catch {
      return undefined;
    }
    return undefined;
  }
}
