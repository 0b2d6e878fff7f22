import { encodePkt, FLUSH_PKT } from '../protocol/pkt-line.js';
import { encodeRejections } from '../protocol/report-status.js';
import { BAND_DATA, BAND_PROGRESS, encodeSideband } from '../protocol/sideband.js';

export interface ClientCapabilities {
  sideband: boolean;
  reportStatus: boolean;
}

/** What the client asked for in its command list (gitprotocol-capabilities). */
export function clientCapabilities(capabilities: readonly string[]): ClientCapabilities {
  return {
    sideband: capabilities.includes('side-band-64k') || capabilities.includes('side-band'),
    reportStatus: capabilities.some((c) => c === 'report-status' || c === 'report-status-v2'),
  };
}

/**
 * Why githa did not accept a push, in the protocol the client speaks: every ref
 * `ng` with githa's reason (git shows "! [remote rejected] main -> main (githa: …)"),
 * and the whole sentence as progress ("remote: githa: …"). Without
 * report-status, an ERR packet (gitprotocol-pack) carries the message.
 */
export function rejectionBytes(refs: readonly string[], caps: ClientCapabilities, message: string): Buffer {
  const reason = shorten(`githa: ${message}`);
  if (caps.sideband) {
    const parts = [encodeSideband(BAND_PROGRESS, Buffer.from(`githa: ${message}\n`))];
    if (caps.reportStatus) parts.push(encodeSideband(BAND_DATA, encodeRejections([...refs], reason)));
    parts.push(FLUSH_PKT);
    return Buffer.concat(parts);
  }
  if (caps.reportStatus) return encodeRejections([...refs], reason);
  return encodePkt(`ERR ${reason}\n`);
}

function shorten(s: string): string {
  return s.length > 300 ? `${s.slice(0, 297)}...` : s;
}
