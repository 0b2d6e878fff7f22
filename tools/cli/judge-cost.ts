#!/usr/bin/env node
/**
 * `node dist-tools/tools/cli/judge-cost.js [--refs N] [--rounds N]`: what judging one
 * held listing costs (docs/performance.md "F2: memoized verdicts"), in this
 * process, on a listing shaped like the bench's `refs` repository (N refs:
 * a branch, then tags, every other one annotated, so peeled): the SHA-256 of
 * the bytes alone, the full judgment (memo missed), and a memo hit, for the
 * HTTP and SSH/git:// readings. Median of `rounds` (after a warm-up).
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { VerdictMemo } from '../../src/cluster/verdict-memo.js';
import { discoveryListing, lsRefsListing } from '../../src/frontends/http/held-answer.js';
import { advertisementLive, lsRefsLive } from '../../src/frontends/stream/judged-listing.js';
import { MessageHold } from '../../src/protocol/held-listing.js';
import { encodePkt, FLUSH_PKT } from '../../src/protocol/pkt-line.js';

const oid = (): string => randomBytes(20).toString('hex');

function listings(n: number): { v0: Buffer; discovery: Buffer; lsRefs: Buffer } {
  const v0: Buffer[] = [];
  const ls: Buffer[] = [];
  const main = oid();
  v0.push(encodePkt(`${main} HEAD\0multi_ack thin-pack side-band side-band-64k ofs-delta shallow no-progress include-tag agent=git/2.39.5\n`));
  v0.push(encodePkt(`${main} refs/heads/main\n`));
  ls.push(encodePkt(`${main} HEAD symref-target:refs/heads/main\n`), encodePkt(`${main} refs/heads/main\n`));
  for (let i = 0; i < n - 1; i++) {
    const name = `refs/tags/t${String(i).padStart(5, '0')}`;
    const tip = oid();
    v0.push(encodePkt(`${tip} ${name}\n`));
    if (i % 2 === 0) {
      const peeled = oid();
      v0.push(encodePkt(`${peeled} ${name}^{}\n`));
      ls.push(encodePkt(`${tip} ${name} peeled:${peeled}\n`));
    } else ls.push(encodePkt(`${tip} ${name}\n`));
  }
  v0.push(FLUSH_PKT);
  ls.push(FLUSH_PKT);
  const adv = Buffer.concat(v0);
  const discovery = Buffer.concat([encodePkt('# service=git-upload-pack\n'), FLUSH_PKT, adv]);
  return { v0: adv, discovery, lsRefs: Buffer.concat(ls) };
}

function median(rounds: number, f: () => unknown): number {
  for (let i = 0; i < 3; i++) f();
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = process.hrtime.bigint();
    f();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}

const held = (bytes: Buffer) => {
  const got = new MessageHold(Infinity).write(bytes);
  if (got === undefined || got === 'over-cap') throw new Error('not one message');
  return got;
};

function main(): void {
  const { values } = parseArgs({ options: { refs: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '30' } } });
  const n = Number(values.refs);
  const rounds = Number(values.rounds);
  const l = listings(n);
  const off = (): VerdictMemo => new VerdictMemo({ maxEntries: 0, maxBytes: 0, minListingBytes: Infinity });
  const on = new VerdictMemo();
  const prefixes = ['refs/heads/', 'refs/tags/'];
  const row = (what: string, bytes: Buffer, miss: () => unknown, hit: () => unknown): void => {
    const sha = median(rounds, () => createHash('sha256').update(bytes).digest());
    const m = median(rounds, miss);
    hit();
    const h = median(rounds, hit);
    process.stdout.write(`| ${what} | ${(bytes.length / 1024).toFixed(0)} KB | ${sha.toFixed(3)} ms | ${m.toFixed(2)} ms | ${h.toFixed(3)} ms |\n`);
  };
  process.stdout.write(`${n} refs, median of ${rounds}, Node ${process.version}\n\n| listing | size | SHA-256 alone | judged (no memo) | memo hit |\n|---|---|---|---|---|\n`);
  row('HTTP info/refs (v0)', l.discovery, () => discoveryListing(l.discovery, 'git-upload-pack', off()), () => discoveryListing(l.discovery, 'git-upload-pack', on));
  row('HTTP ls-refs, no prefix', l.lsRefs, () => lsRefsListing(l.lsRefs, [], off()), () => lsRefsListing(l.lsRefs, [], on));
  row('HTTP ls-refs, 2 prefixes', l.lsRefs, () => lsRefsListing(l.lsRefs, prefixes, off()), () => lsRefsListing(l.lsRefs, prefixes, on));
  // On SSH and git:// the packets are decoded as they arrive (src/frontends/stream/hold.ts): that part is not memoized.
  const v0 = held(l.v0);
  const ls = held(l.lsRefs);
  row('SSH advertisement (v0)', l.v0, () => advertisementLive(v0, off()), () => advertisementLive(v0, on));
  row('SSH ls-refs, 2 prefixes', l.lsRefs, () => lsRefsLive(ls, prefixes, off()), () => lsRefsLive(ls, prefixes, on));
  const decode = median(rounds, () => held(l.lsRefs));
  process.stdout.write(`\nSSH/git://: holding (decoding) the ls-refs answer, not memoized: ${decode.toFixed(2)} ms\n`);
}

main();
