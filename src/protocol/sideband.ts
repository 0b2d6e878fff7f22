/**
 * Side-band multiplexing (gitprotocol-pack "Packfile Data",
 * gitprotocol-capabilities "side-band, side-band-64k", gitprotocol-v2 "packfile").
 *
 * Each data pkt-line's first payload byte names a band: 1 carries data (pack
 * bytes, or a nested report-status on push), 2 progress text for the user's
 * terminal, 3 a fatal error just before the stream aborts.
 */
import { LimitExceededError, SidebandError } from '../errors.js';
import { encodePkt, MAX_PKT_PAYLOAD } from './pkt-line.js';

/** Band 1: data (pack bytes, or a nested report-status on push). */
export const BAND_DATA = 1;
/** Band 2: progress text for the user's terminal. */
export const BAND_PROGRESS = 2;
/** Band 3: a fatal error, just before the stream aborts. */
export const BAND_ERROR = 3;

export type Band = typeof BAND_DATA | typeof BAND_PROGRESS | typeof BAND_ERROR;

export interface SidebandFrame {
  band: Band;
  payload: Buffer;
}

/**
 * Data bytes per packet with side-band-64k: git's send_sideband() uses
 * LARGE_PACKET_MAX (65520) minus the 4-byte header minus the band byte.
 */
export const SIDEBAND_64K_MAX_DATA = MAX_PKT_PAYLOAD - 1; // 65515
/**
 * Data bytes per packet with plain side-band. The spec text says "up to 999
 * data bytes", but git sends packets of at most 1000 bytes in total (header
 * included), i.e. 995 data bytes; using git's own number is safe for every peer.
 */
export const SIDEBAND_MAX_DATA = 995;

/** Splits a data pkt-line's payload into band and data (a zero-copy sub-array). */
export function parseSidebandPayload(payload: Buffer): SidebandFrame {
  if (payload.length === 0) throw new SidebandError('empty side-band packet');
  const band = payload[0] as number;
  if (band !== BAND_DATA && band !== BAND_PROGRESS && band !== BAND_ERROR) {
    throw new SidebandError(`invalid side-band ${band}`);
  }
  return { band, payload: payload.subarray(1) };
}

/**
 * Encodes data on one band, split into as many pkt-lines as needed. Empty data
 * yields a single packet holding only the band byte (git's keepalive, "0005\2").
 */
export function encodeSideband(band: Band, data: Buffer, maxPayload: number = SIDEBAND_64K_MAX_DATA): Buffer {
  if (!Number.isInteger(maxPayload) || maxPayload < 1 || maxPayload > SIDEBAND_64K_MAX_DATA) {
    throw new LimitExceededError(`side-band data size must be 1..${SIDEBAND_64K_MAX_DATA}`);
  }
  const bandByte = Buffer.of(band);
  if (data.length === 0) return encodePkt(bandByte);
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += maxPayload) {
    parts.push(encodePkt(Buffer.concat([bandByte, data.subarray(off, off + maxPayload)])));
  }
  return Buffer.concat(parts);
}

/**
 * A progress line of githa's own on band 2 (git's client prints it as
 * "remote: <text>"; sideband.c keeps a line that ends in "\r" on the spot for
 * the next update, as git's own progress does). Split at plain side-band's
 * packet size, which both side-band and side-band-64k accept.
 */
export function encodeProgress(text: string): Buffer {
  return encodeSideband(BAND_PROGRESS, Buffer.from(text, 'utf8'), SIDEBAND_MAX_DATA);
}
