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

export interface PackCommit {
  oid: string;
  parents: string[];
  subject: string;
}

const TYPES: Record<number, string> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };

/** Every commit in `pack` by object id; `hash` is the repository's object format (sha1 or sha256). */
export function packCommits(pack: Buffer, hash: 'sha1' | 'sha256' = 'sha1'): Map<string, PackCommit> {
  if (pack.length < 12 || pack.toString('latin1', 0, 4) !== 'PACK') throw new Error('not a packfile');
  const count = pack.readUInt32BE(8);
  const idLength = hash === 'sha1' ? 20 : 32;
  const byOffset = new Map<number, { type: string; data: Buffer }>();
  const byOid = new Map<string, { type: string; data: Buffer }>();
  const commits = new Map<string, PackCommit>();
  let pos = 12;
  for (let i = 0; i < count; i++) {
    const start = pos;
    let c = pack[pos++]!;
    const kind = (c >> 4) & 7;
    while (c & 0x80) c = pack[pos++]!;
    let base: { type: string; data: Buffer } | undefined;
    if (kind === 6) {
      c = pack[pos++]!;
      let back = c & 0x7f;
      while (c & 0x80) {
        c = pack[pos++]!;
        back = ((back + 1) << 7) | (c & 0x7f);
      }
      base = byOffset.get(start - back);
    } else if (kind === 7) {
      base = byOid.get(pack.toString('hex', pos, pos + idLength));
      pos += idLength;
    }
    const { buffer, engine } = inflateSync(pack.subarray(pos), { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    pos += engine.bytesWritten;
    let object: { type: string; data: Buffer } | undefined;
    if (kind === 6 || kind === 7) object = base ? { type: base.type, data: applyDelta(base.data, buffer) } : undefined;
    else if (TYPES[kind]) object = { type: TYPES[kind]!, data: buffer };
    if (!object) continue; // a thin pack's base outside it: not a commit this pack can tell
    byOffset.set(start, object);
    const oid = createHash(hash).update(`${object.type} ${object.data.length}\0`).update(object.data).digest('hex');
    byOid.set(oid, object);
    if (object.type === 'commit') commits.set(oid, parseCommit(oid, object.data));
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

/** gitformat-pack(5) "Deltified representation": copy and insert instructions after two size headers. */
function applyDelta(base: Buffer, delta: Buffer): Buffer {
  let pos = 0;
  const size = (): number => {
    let n = 0;
    let shift = 0;
    let c: number;
    do {
      c = delta[pos++]!;
      n |= (c & 0x7f) << shift;
      shift += 7;
    } while (c & 0x80);
    return n;
  };
  size();
  const out = Buffer.alloc(size());
  let at = 0;
  while (pos < delta.length) {
    const op = delta[pos++]!;
    if (op & 0x80) {
      let offset = 0;
      let length = 0;
      for (let b = 0; b < 4; b++) if (op & (1 << b)) offset |= delta[pos++]! << (8 * b);
      for (let b = 0; b < 3; b++) if (op & (0x10 << b)) length |= delta[pos++]! << (8 * b);
      if (length === 0) length = 0x10000;
      base.copy(out, at, offset >>> 0, (offset >>> 0) + length);
      at += length;
    } else if (op > 0) {
      delta.copy(out, at, pos, pos + op);
      at += op;
      pos += op;
    } else throw new Error('invalid delta instruction 0');
  }
  return out;
}
