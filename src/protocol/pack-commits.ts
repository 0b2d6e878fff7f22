/**
 * The commits of a packfile (gitformat-pack(5) "pack-*.pack files"): each
 * object's header, zlib stream and, for deltas (OBJ_OFS_DELTA, OBJ_REF_DELTA),
 * the base it applies to, so a deltified commit is read too. Only commits are
 * kept (their parents and subject line); trees and blobs are inflated to find
 * where the next object starts and then dropped, except as delta bases.
 * Used to say which commits a promotion rewinds (src/cluster/promote-loss.ts).
 */
import { createHash } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { LimitExceededError, ProtocolSyntaxError } from '../errors.js';

export interface PackCommit {
  oid: string;
  parents: string[];
  subject: string;
}

/**
 * Most bytes a pack's objects may inflate to, in all (deltas' results
 * included). The pack comes from a backend and a zlib stream inflates up to
 * ~1000 times its size: without a cap, the 64 MiB a caller reads
 * (LOSS_PACK_MAX_BYTES) could ask for tens of GiB.
 */
export const PACK_MAX_INFLATED_BYTES = 1024 * 1024 * 1024;

export interface PackLimits {
  maxInflatedBytes?: number;
}

const TYPES: Record<number, string> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };

/**
 * Every commit in `pack` by object id; `hash` is the repository's object
 * format (sha1 or sha256). Throws LimitExceededError past
 * `limits.maxInflatedBytes`, ProtocolSyntaxError on a malformed pack (an
 * object that inflates past its declared size, a delta outside its base).
 * Only commits are kept, as objects and as delta bases: git deltifies an
 * object only against one of its own type (pack-objects' try_delta), so a
 * tree's or blob's data is dropped once its size is checked.
 */
export function packCommits(pack: Buffer, hash: 'sha1' | 'sha256' = 'sha1', limits: PackLimits = {}): Map<string, PackCommit> {
  if (pack.length < 12 || pack.toString('latin1', 0, 4) !== 'PACK') throw new ProtocolSyntaxError('not a packfile');
  const count = pack.readUInt32BE(8);
  const idLength = hash === 'sha1' ? 20 : 32;
  const budget = limits.maxInflatedBytes ?? PACK_MAX_INFLATED_BYTES;
  let inflated = 0;
  const charge = (n: number): void => {
    inflated += n;
    if (inflated > budget) throw new LimitExceededError(`the pack's objects inflate to more than ${budget} bytes`);
  };
  const byte = (at: number): number => {
    if (at >= pack.length) throw new ProtocolSyntaxError('the pack ends inside an object');
    return pack[at]!;
  };
  const byOffset = new Map<number, Buffer>();
  const byOid = new Map<string, Buffer>();
  const commits = new Map<string, PackCommit>();
  let pos = 12;
  for (let i = 0; i < count; i++) {
    const start = pos;
    let c = byte(pos++);
    const kind = (c >> 4) & 7;
    // gitformat-pack(5) "Size encoding": the inflated size (a delta's own size for deltas).
    let size = c & 0x0f;
    for (let shift = 4; c & 0x80; shift += 7) {
      c = byte(pos++);
      size += (c & 0x7f) * 2 ** shift;
    }
    let base: Buffer | undefined;
    if (kind === 6) {
      c = byte(pos++);
      let back = c & 0x7f;
      while (c & 0x80) {
        c = byte(pos++);
        back = (back + 1) * 128 + (c & 0x7f);
      }
      base = byOffset.get(start - back);
    } else if (kind === 7) {
      if (pos + idLength > pack.length) throw new ProtocolSyntaxError('the pack ends inside an object');
      base = byOid.get(pack.toString('hex', pos, pos + idLength));
      pos += idLength;
    }
    // Checked before inflating: the declared size bounds what inflateSync may produce.
    charge(size);
    let buffer: Buffer;
    let used: number;
    try {
      const r = inflateSync(pack.subarray(pos), { info: true, maxOutputLength: Math.max(1, size) }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
      buffer = r.buffer;
      used = r.engine.bytesWritten;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new ProtocolSyntaxError(`an object at offset ${start} inflates to more than its declared ${size} bytes`);
      throw new ProtocolSyntaxError(`an object at offset ${start} does not inflate: ${(err as Error).message}`, { cause: err });
    }
    if (buffer.length !== size) throw new ProtocolSyntaxError(`an object at offset ${start} inflates to ${buffer.length} bytes, not its declared ${size}`);
    pos += used;
    let data: Buffer | undefined;
    if (kind === 6 || kind === 7) data = base ? applyDelta(base, buffer, charge) : undefined;
    else if (TYPES[kind] === 'commit') data = buffer;
    if (!data) continue; // not a commit, or a delta on a base this pack does not hold as a commit (a thin pack's)
    byOffset.set(start, data);
    const oid = createHash(hash).update(`commit ${data.length}\0`).update(data).digest('hex');
    byOid.set(oid, data);
    commits.set(oid, parseCommit(oid, data));
  }
  return commits;
}

function parseCommit(oid: string, data: Buffer): PackCommit {
  const text = data.toString('utf8');
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const parents = head.split('\n').filter((l) => l.startsWith('parent ')).map((l) => l.slice(7).trim());
  const subject = split < 0 ? '' : (text.slice(split + 2).split('\n')[0] ?? '');
  return { oid, parents, subject };
}

/**
 * gitformat-pack(5) "Deltified representation": copy and insert instructions
 * after two size headers. The result's size is charged before it is
 * allocated; every instruction stays inside the base, the delta and the result.
 */
function applyDelta(base: Buffer, delta: Buffer, charge: (n: number) => void): Buffer {
  let pos = 0;
  const bad = (why: string): ProtocolSyntaxError => new ProtocolSyntaxError(`invalid delta: ${why}`);
  const next = (): number => {
    if (pos >= delta.length) throw bad('it ends inside an instruction');
    return delta[pos++]!;
  };
  const size = (): number => {
    let n = 0;
    let c: number;
    let scale = 1;
    do {
      c = next();
      n += (c & 0x7f) * scale;
      scale *= 128;
    } while (c & 0x80);
    return n;
  };
  if (size() !== base.length) throw bad('its base size is not its base\'s');
  const length0 = size();
  charge(length0);
  const out = Buffer.alloc(length0);
  let at = 0;
  while (pos < delta.length) {
    const op = next();
    if (op & 0x80) {
      let offset = 0;
      let length = 0;
      for (let b = 0; b < 4; b++) if (op & (1 << b)) offset += next() * 2 ** (8 * b);
      for (let b = 0; b < 3; b++) if (op & (0x10 << b)) length += next() * 2 ** (8 * b);
      if (length === 0) length = 0x10000;
      if (offset + length > base.length || at + length > out.length) throw bad('a copy reaches outside its base or result');
      base.copy(out, at, offset, offset + length);
      at += length;
    } else if (op > 0) {
      if (pos + op > delta.length || at + op > out.length) throw bad('an insert reaches outside the delta or result');
      delta.copy(out, at, pos, pos + op);
      at += op;
      pos += op;
    } else throw bad('instruction 0');
  }
  if (at !== out.length) throw bad(`it builds ${at} of its ${out.length} bytes`);
  return out;
}
