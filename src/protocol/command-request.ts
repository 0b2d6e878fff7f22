/**
 * A protocol v2 command request (gitprotocol-v2 "Command Request"):
 *
 *   request         = empty-request | command-request
 *   empty-request   = flush-pkt
 *   command-request = command capability-list delim-pkt command-args flush-pkt
 *   command         = PKT-LINE("command=" key LF)
 *
 * githa parses the envelope of every command (to classify it and read its
 * capabilities) but interprets the arguments only of ls-refs and fetch.
 */
import { ProtocolSyntaxError } from '../errors.js';
import { formatV2Capability, parseV2Capability } from './capabilities.js';
import { DELIM_PKT, encodePkt, FLUSH_PKT, type Pkt, pktText } from './pkt-line.js';

export interface V2CommandRequest {
  /** The command name; '' for the empty-request (a lone flush: "no more requests"). */
  command: string;
  capabilities: Map<string, string | true>;
  /** The argument packets' payloads exactly as sent (LF included when present). */
  args: Buffer[];
}

const COMMAND_PREFIX = 'command=';

/**
 * Parses one request's packets, up to and excluding the terminating flush (a
 * trailing flush is tolerated). The delim-pkt may be omitted when there are no
 * arguments. A repeated capability keeps its first value.
 */
export function parseV2Command(pkts: Pkt[]): V2CommandRequest {
  const end = pkts.length > 0 && (pkts[pkts.length - 1] as Pkt).type === 'flush' ? pkts.length - 1 : pkts.length;
  const request: V2CommandRequest = { command: '', capabilities: new Map(), args: [] };
  if (end === 0) return request;
  let inArgs = false;
  for (let i = 0; i < end; i++) {
    const pkt = pkts[i] as Pkt;
    if (pkt.type === 'delim' && i > 0 && !inArgs) {
      inArgs = true;
      continue;
    }
    if (pkt.type !== 'data') throw new ProtocolSyntaxError(`unexpected ${pkt.type} packet in a v2 request`);
    if (i === 0) {
      const text = pktText(pkt.payload);
      if (!text.startsWith(COMMAND_PREFIX)) throw new ProtocolSyntaxError('v2 request must start with "command="');
      const [key, value] = parseV2Capability(text.slice(COMMAND_PREFIX.length), 'v2 command');
      if (value !== true) throw new ProtocolSyntaxError('invalid v2 command name');
      request.command = key;
    } else if (inArgs) {
      request.args.push(pkt.payload);
    } else {
      const [key, value] = parseV2Capability(pktText(pkt.payload), 'v2 request');
      if (key === 'command') throw new ProtocolSyntaxError('more than one command in a v2 request');
      if (!request.capabilities.has(key)) request.capabilities.set(key, value);
    }
  }
  return request;
}

/** Encodes a command request: command line, capabilities, delim, arguments (lines, LF added), flush. */
export function encodeV2Command(
  command: string,
  capabilities: ReadonlyArray<readonly [string, string | true]>,
  args: readonly string[],
): Buffer {
  const parts = [encodePkt(`${COMMAND_PREFIX}${formatV2Capability(command, true)}\n`)];
  for (const [key, value] of capabilities) parts.push(encodePkt(`${formatV2Capability(key, value)}\n`));
  parts.push(DELIM_PKT);
  for (const arg of args) {
    if (/[\0\n]/.test(arg)) throw new ProtocolSyntaxError('v2 argument with NUL or LF');
    parts.push(encodePkt(`${arg}\n`));
  }
  parts.push(FLUSH_PKT);
  return Buffer.concat(parts);
}

/** Capability lines common to client requests: agent, object-format, server-option (gitprotocol-v2). */
export function requestCapabilities(r: {
  agent?: string;
  objectFormat?: string;
  serverOptions?: readonly string[];
}): Array<[string, string | true]> {
  const caps: Array<[string, string | true]> = [];
  if (r.agent !== undefined) caps.push(['agent', r.agent]);
  if (r.objectFormat !== undefined) caps.push(['object-format', r.objectFormat]);
  for (const option of r.serverOptions ?? []) caps.push(['server-option', option]);
  return caps;
}
