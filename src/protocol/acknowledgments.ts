/**
 * "Does this server have these objects?" asked the way git's own negotiation
 * asks (gitprotocol-v2 "fetch"): a `fetch` request WITHOUT `done`, `want`
 * one of the server's tips and `have` each object in question. The server
 * answers with the acknowledgments section and, unless it sends `ready`,
 * ends there with a flush-pkt:
 *
 *   acknowledgments = PKT-LINE("acknowledgments" LF)
 *                     (nak | *ack)
 *                     (ready)
 *   nak = PKT-LINE("NAK" LF)
 *   ack = PKT-LINE("ACK" SP obj-id LF)
 *   ready = PKT-LINE("ready" LF)
 *
 * git's upload-pack acknowledges every `have` it holds (process_haves +
 * send_acks), so the ACKed ids are exactly the objects the server has. After
 * `ready` the server goes on with a packfile: the reader stops at `ready`,
 * and the caller closes the request without reading any pack byte.
 * The repairer uses it (docs/architecture.md "Verified copies": a copy's
 * tips the leaders lack are kept before it is refilled).
 */
import { ProtocolSyntaxError } from '../errors.js';
import { encodeFetchRequest, FetchResponseReader } from './fetch.js';
import { parseObjectId } from './object-id.js';

export interface Acknowledgments {
  /** The `have` ids the server acknowledged: it holds those objects. */
  acked: Set<string>;
  /** The server sent `ready` (a packfile would follow; it is not read). */
  ready: boolean;
}

/** The request: want `tip` (one of the server's own tips), have each of `oids`, no `done`. */
export function encodeHaveRequest(tip: string, oids: readonly string[], extra: { agent?: string; objectFormat?: string } = {}): Buffer {
  return encodeFetchRequest({ wants: [tip], haves: [...oids], done: false, noProgress: true, ...extra });
}

/**
 * Reads the answer to encodeHaveRequest incrementally: write() the bytes as
 * they arrive; result() returns the acknowledgments once the section is
 * complete (undefined: more bytes are needed). A response without an
 * acknowledgments section (a server that went straight to a packfile) acked
 * nothing. An "ERR" packet throws RemoteFatalError (src/protocol/fetch.ts).
 */
export class AcknowledgmentsReader {
  private readonly reader = new FetchResponseReader();
  private readonly acked = new Set<string>();
  private section = '';
  private answer: Acknowledgments | undefined;

  write(chunk: Buffer): void {
    this.reader.write(chunk);
  }

  result(): Acknowledgments | undefined {
    if (this.answer) return this.answer;
    for (let ev = this.reader.next(); ev; ev = this.reader.next()) {
      if (ev.type === 'section') {
        if (this.section !== '' || ev.name !== 'acknowledgments') return this.finish(false);
        this.section = ev.name;
      } else if (ev.type === 'line') {
        if (ev.text === 'ready') return this.finish(true);
        if (ev.text === 'NAK') continue;
        if (!ev.text.startsWith('ACK ')) throw new ProtocolSyntaxError('invalid line in the acknowledgments section');
        this.acked.add(parseObjectId(ev.text.slice(4), 'ACK'));
      } else {
        // The final flush (no `ready`), or pack bytes of a server that skipped the section.
        return this.finish(false);
      }
    }
    return undefined;
  }

  private finish(ready: boolean): Acknowledgments {
    this.answer = { acked: this.acked, ready };
    return this.answer;
  }
}
