/**
 * The server-sig-algs extension githa sends (RFC 8308 §3.1): the signature
 * algorithms it accepts for user authentication. ssh2 1.17 sends a fixed list
 * that is malformed (`…ecdsa-sha2-nistp521rsa-sha2-512`, a comma missing)
 * and names ssh-rsa and ssh-dss, which githa refuses; OpenSSH picks its RSA
 * signature algorithm from this list, so it must be right. ssh2 builds that
 * packet in a private function, so the one connection's packet writer is
 * wrapped to put githa's list in its place (through ssh2 internals, as
 * disconnectWithMessage in limits.ts does); if those change, ssh2's own goes out.
 */
import type { Connection } from 'ssh2';

/** Signature algorithms accepted for user keys, best first (OpenSSH 9.x's order, ssh-rsa only when allowed). */
export function serverSigAlgs(allowSshRsa: boolean): string[] {
  const algs = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'];
  return allowSshRsa ? [...algs, 'ssh-rsa'] : algs;
}

/** SSH_MSG_EXT_INFO (RFC 8308 §2.3). */
const EXT_INFO = 7;

interface Writer {
  allocStart: number;
  alloc(size: number, force?: boolean): Buffer;
  finalize(packet: Buffer, force?: boolean): Buffer;
}

/** The payload of an EXT_INFO with server-sig-algs = `algs` (tests parse it back). */
export function extInfoPayload(algs: readonly string[]): Buffer {
  const name = Buffer.from('server-sig-algs', 'ascii');
  const value = Buffer.from(algs.join(','), 'ascii');
  const out = Buffer.alloc(1 + 4 + 4 + name.length + 4 + value.length);
  out[0] = EXT_INFO;
  out.writeUInt32BE(1, 1);
  out.writeUInt32BE(name.length, 5);
  name.copy(out, 9);
  out.writeUInt32BE(value.length, 9 + name.length);
  value.copy(out, 13 + name.length);
  return out;
}

/** Makes `client` send `algs` as its server-sig-algs; false when ssh2's internals are not as expected. */
export function replaceServerSigAlgs(client: Connection, algs: readonly string[]): boolean {
  const rw = (client as unknown as { _protocol?: { _packetRW?: { write?: Writer } } })._protocol?._packetRW;
  if (!rw || !rw.write || typeof rw.write.finalize !== 'function' || typeof rw.write.alloc !== 'function') return false;
  const payload = extInfoPayload(algs);
  let sent = false;
  const wrap = (writer: Writer): Writer => {
    const finalize = writer.finalize;
    writer.finalize = function (packet: Buffer, force?: boolean): Buffer {
      if (!sent && packet[writer.allocStart] === EXT_INFO) {
        sent = true;
        const ours = writer.alloc(payload.length);
        payload.copy(ours, writer.allocStart);
        return finalize.call(writer, ours, force);
      }
      return finalize.call(writer, packet, force);
    };
    return writer;
  };
  // ssh2 replaces the writer at every NEWKEYS (and when compression starts): wrap each one.
  let current = wrap(rw.write);
  Object.defineProperty(rw, 'write', {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (writer: Writer) => {
      current = sent ? writer : wrap(writer);
    },
  });
  return true;
}
