/**
 * A push's request to receive-pack (gitprotocol-pack "Reference Update
 * Request and Packfile Transfer"):
 *
 *   update-requests = *shallow ( command-list | push-cert )
 *   shallow         = PKT-LINE("shallow" SP obj-id)
 *   command-list    = PKT-LINE(command NUL capability-list) *PKT-LINE(command) flush-pkt
 *   command         = old-id SP new-id SP name      ; create: old zero; delete: new zero
 *   push-options    = *PKT-LINE(push-option) flush-pkt   ; iff "push-options" was requested
 *   packfile        = "PACK" 28*(OCTET)                   ; unless every command is a delete
 *
 * The parser reads exactly up to the end of the command section (and of the
 * push options), so the caller can take the pack that follows with rest()
 * without githa ever decoding it.
 */
import { LimitExceededError, ProtocolSyntaxError } from '../errors.js';
import { capabilityValue, hasCapability, parseCapabilityList } from './capabilities.js';
import { isZeroOid, ObjectIdFormat, parseObjectId } from './object-id.js';
import { checkWireRefName } from './ref-name.js';
import { decodeUtf8Strict, encodePkt, FLUSH_PKT, type Pkt, PktLineDecoder, pktText } from './pkt-line.js';

export { isZeroOid, ZERO_OID } from './object-id.js';

export interface RefCommand {
  oldOid: string;
  newOid: string;
  ref: string;
}

export interface ReceivePackRequest {
  commands: RefCommand[];
  capabilities: string[];
  pushOptions: string[];
  shallow: string[];
  /** False when every command is a delete (or there are none): no pack follows. */
  packExpected: boolean;
  /** The signed push certificate (the lines between "push-cert" and "push-cert-end"), when the push was signed. */
  pushCertificate?: string;
}

export interface ReceivePackRequestParserOptions {
  /** Commands (and, separately, shallow lines) accepted; default 100000. */
  maxCommands?: number;
  /** Push options accepted; default 1000. */
  maxPushOptions?: number;
  /** Bytes of the whole command section (commands, options, certificate); default 64 MiB. */
  maxBytes?: number;
}

type State = 'start' | 'commands' | 'cert-header' | 'cert-commands' | 'cert-signature' | 'cert-flush' | 'options' | 'done';

const PUSH_CERT = 'push-cert';
const PUSH_CERT_END = 'push-cert-end';

/** Incremental parser of the command section of a push (see the module comment). */
export class ReceivePackRequestParser {
  private readonly decoder = new PktLineDecoder();
  private readonly maxCommands: number;
  private readonly maxPushOptions: number;
  private readonly maxBytes: number;
  private bytes = 0;
  private failed = false;
  private readonly oids = new ObjectIdFormat();
  private state: State = 'start';
  private readonly request: ReceivePackRequest = {
    commands: [],
    capabilities: [],
    pushOptions: [],
    shallow: [],
    packExpected: false,
  };
  private cert: string[] = [];
  private signed = false;

  constructor(opts?: ReceivePackRequestParserOptions) {
    this.maxCommands = opts?.maxCommands ?? 100_000;
    this.maxPushOptions = opts?.maxPushOptions ?? 1000;
    this.maxBytes = opts?.maxBytes ?? 64 * 1024 * 1024;
  }

  /**
   * Feeds bytes as the client sent them. Returns the request once its command
   * section is complete (exactly once), else undefined.
   */
  write(chunk: Buffer): ReceivePackRequest | undefined {
    if (this.state === 'done') throw new ProtocolSyntaxError('push request already complete; use rest()');
    // After an error the stream cannot be trusted any more: keep failing.
    if (this.failed) throw new ProtocolSyntaxError('push request already rejected');
    try {
      return this.consume(chunk);
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  private consume(chunk: Buffer): ReceivePackRequest | undefined {
    this.decoder.write(chunk);
    // Packets are taken one at a time and never past the end of the section:
    // what follows is pack data, which must not be read as pkt-lines.
    for (let pkt = this.decoder.next(); pkt !== undefined; pkt = this.decoder.next()) {
      this.bytes += pkt.type === 'data' ? 4 + pkt.payload.length : 4;
      if (this.bytes > this.maxBytes) throw new LimitExceededError(`push command section exceeds ${this.maxBytes} bytes`);
      this.handle(pkt);
      if ((this.state as State) === 'done') {
        this.request.packExpected = this.request.commands.some((c) => !isZeroOid(c.newOid));
        if (this.signed) this.request.pushCertificate = this.cert.join('');
        return this.request;
      }
    }
    return undefined;
  }

  /** After completion: the bytes after the command section (the pack, if any), and clears them. */
  rest(): Buffer {
    if (this.state !== 'done') throw new ProtocolSyntaxError('push request not complete yet');
    return this.decoder.rest();
  }

  private handle(pkt: Pkt): void {
    if (pkt.type === 'flush') {
      this.onFlush();
      return;
    }
    if (pkt.type !== 'data') throw new ProtocolSyntaxError(`unexpected ${pkt.type} packet in a push request`);
    const payload = pkt.payload;
    switch (this.state) {
      case 'start':
        this.onStartLine(payload);
        return;
      case 'commands':
        this.addCommand(this.text(payload, 'push command'));
        return;
      case 'options':
        this.addOption(payload);
        return;
      case 'cert-flush':
        throw new ProtocolSyntaxError('data after push-cert-end');
      default:
        this.onCertLine(payload);
    }
  }

  private onFlush(): void {
    switch (this.state) {
      case 'start':
        // An empty request: the client has nothing to push. Shallow lines
        // alone are not a request.
        if (this.request.shallow.length > 0) throw new ProtocolSyntaxError('push request with shallow lines only');
        this.state = 'done';
        return;
      case 'commands':
      case 'cert-flush':
        this.state = hasCapability(this.request.capabilities, 'push-options') ? 'options' : 'done';
        return;
      case 'options':
        this.state = 'done';
        return;
      default:
        throw new ProtocolSyntaxError('flush inside a push certificate');
    }
  }

  private onStartLine(payload: Buffer): void {
    const nul = payload.indexOf(0);
    const head = this.text(nul < 0 ? payload : payload.subarray(0, nul), 'push command');
    if (nul < 0 && !head.startsWith('shallow ')) {
      // The grammar wants "NUL capability-list" here, but receive-pack accepts
      // a first command without it, and so do we: no capabilities.
      this.addCommand(head);
      this.state = 'commands';
      return;
    }
    if (nul < 0) {
      if (this.request.shallow.length >= this.maxCommands) {
        throw new LimitExceededError(`more than ${this.maxCommands} shallow lines in a push`);
      }
      this.request.shallow.push(this.oids.parse(head.slice(8), 'shallow line'));
      return;
    }
    const capsBytes = payload.subarray(nul + 1);
    if (capsBytes.includes(0)) throw new ProtocolSyntaxError('more than one NUL in a push command');
    this.request.capabilities = parseCapabilityList(pktText(capsBytes));
    const objectFormat = capabilityValue(this.request.capabilities, 'object-format');
    if (objectFormat !== undefined) this.oids.expect(objectFormat);
    if (head === PUSH_CERT) {
      this.signed = true;
      this.state = 'cert-header';
      return;
    }
    this.addCommand(head);
    this.state = 'commands';
  }

  /** Lines of a push certificate: header, empty line, commands, signature, "push-cert-end". */
  private onCertLine(payload: Buffer): void {
    if (this.cert.length > this.maxCommands + 10_000) {
      throw new LimitExceededError('push certificate too long');
    }
    const line = this.text(payload, 'push certificate');
    if (line === PUSH_CERT_END) {
      this.state = 'cert-flush';
      return;
    }
    // Like receive-pack, keep the certificate's lines verbatim (LFs included),
    // without the "push-cert" and "push-cert-end" framing lines.
    this.cert.push(payload.toString('utf8'));
    if (this.state === 'cert-header') {
      if (line === '') this.state = 'cert-commands';
    } else if (this.state === 'cert-commands') {
      // The detached signature starts with an armor line (PGP, SSH or X.509).
      if (line.startsWith('-----BEGIN ')) this.state = 'cert-signature';
      else this.addCommand(line);
    }
  }

  private addCommand(line: string): void {
    if (this.request.commands.length >= this.maxCommands) {
      throw new LimitExceededError(`more than ${this.maxCommands} commands in a push`);
    }
    const sp1 = line.indexOf(' ');
    const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
    if (sp2 < 0) throw new ProtocolSyntaxError('malformed push command');
    this.request.commands.push({
      oldOid: this.oids.parse(line.slice(0, sp1), 'push command'),
      newOid: this.oids.parse(line.slice(sp1 + 1, sp2), 'push command'),
      ref: checkWireRefName(line.slice(sp2 + 1), 'push command'),
    });
  }

  private addOption(payload: Buffer): void {
    if (this.request.pushOptions.length >= this.maxPushOptions) {
      throw new LimitExceededError(`more than ${this.maxPushOptions} push options`);
    }
    const option = this.text(payload, 'push option');
    // push-option = 1*( VCHAR | SP ): no NUL, no LF inside.
    if (/[\0\n]/.test(option)) throw new ProtocolSyntaxError('push option with NUL or LF');
    this.request.pushOptions.push(option);
  }

  /** Text of a line: strict UTF-8 (ref names must round-trip), one trailing LF removed. */
  private text(payload: Buffer, what: string): string {
    const end = payload.length > 0 && payload[payload.length - 1] === 0x0a ? payload.length - 1 : payload.length;
    const text = decodeUtf8Strict(payload.subarray(0, end), what);
    if (text.includes('\0')) throw new ProtocolSyntaxError(`NUL in ${what}`);
    return text;
  }
}

/**
 * Encodes a command list (the first command carries the capabilities) with its
 * flush and, when push options are given or "push-options" is among the
 * capabilities, the push-option list and its flush. The caller appends the
 * pack (none when every command is a delete). No commands: a lone flush.
 */
export function encodeReceivePackRequest(
  commands: RefCommand[],
  capabilities: string[],
  pushOptions?: string[],
): Buffer {
  if (commands.length === 0) return FLUSH_PKT;
  const caps = [...capabilities];
  if (pushOptions !== undefined && pushOptions.length > 0 && !caps.includes('push-options')) caps.push('push-options');
  const parts = commands.map((c, i) => {
    const line = `${parseObjectId(c.oldOid, 'push command')} ${parseObjectId(c.newOid, 'push command')} ${checkWireRefName(c.ref, 'push command')}`;
    return encodePkt(i === 0 ? `${line}\0${caps.join(' ')}\n` : `${line}\n`);
  });
  parts.push(FLUSH_PKT);
  if (caps.includes('push-options')) {
    for (const option of pushOptions ?? []) {
      if (/[\0\n]/.test(option)) throw new ProtocolSyntaxError('push option with NUL or LF');
      parts.push(encodePkt(`${option}\n`));
    }
    parts.push(FLUSH_PKT);
  }
  return Buffer.concat(parts);
}
