/**
 * Issue 19 item 1, scaled down and bounded (docs/security.md "Memory
 * budgets"): gzip receive-pack POSTs whose command lists have no flush-pkt,
 * left open, against real githa with a small memory budget. Over the
 * per-request budget each is refused 413; under it they are held until the
 * process's budget is full, and the next is refused 503 + Retry-After; githa's
 * held-bytes metric never passes the budget, and a clone and a push still
 * work meanwhile. A caller without access to a repository is answered before
 * githa reads its body.
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, gzipSync } from 'node:zlib';
import { bcrypt } from 'hash-wasm';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { pkt } from '../support/hostile-corpus.js';
import { waitFor } from '../support/wait.js';

const ZERO = '0'.repeat(40);
const BUDGET = 1024 * 1024;
const PER_REQUEST = 128 * 1024;
/** What a stalled attacker holds: under PER_REQUEST; ten of them fill all but 24 KiB of BUDGET. */
const STALLED = 100 * 1024;

/** A command list of about `bytes` inflated bytes of long ref names, with no flush-pkt: it never completes. */
function commandList(bytes: number, sha: string): Buffer {
  const lines: Buffer[] = [];
  let total = 0;
  for (let i = 0; total < bytes; i++) {
    const line = pkt(`${ZERO} ${sha} refs/heads/${'x'.repeat(900)}-${i}${i === 0 ? '\0report-status' : ''}\n`);
    lines.push(line);
    total += line.length;
  }
  return Buffer.concat(lines).subarray(0, bytes);
}

/** An HTTP answer, complete once its head and its body (Content-Length or chunked) are in. */
function parsed(data: Buffer): { status: number; headers: Record<string, string>; body: string } | undefined {
  const text = data.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = text.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  let body = text.slice(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    // RFC 9112 7.1: size in hex, CRLF, data, CRLF; a zero size ends it.
    let out = '';
    for (let rest = body; ; ) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) return undefined;
      const size = parseInt(rest.slice(0, nl), 16);
      if (size === 0) break;
      if (!(size > 0) || rest.length < nl + 2 + size + 2) return undefined;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  } else if (body.length < Number(headers['content-length'] ?? 0)) return undefined;
  return { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(head[0] ?? '')?.[1] ?? 0), headers, body };
}

/** A raw POST that sends its head and `body` and then nothing more, its connection left open. */
class OpenPost {
  readonly socket: Socket;
  private data = Buffer.alloc(0);
  readonly answer: Promise<NonNullable<ReturnType<typeof parsed>>>;

  constructor(port: number, path: string, headers: Record<string, string>, body: Buffer) {
    this.socket = connect({ port, host: '127.0.0.1' });
    this.socket.on('error', () => {});
    const head = [`POST ${path} HTTP/1.1`, `host: 127.0.0.1:${port}`, 'content-type: application/x-git-receive-pack-request', 'content-length: 100000000', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    this.socket.write(`${head.join('\r\n')}\r\n\r\n`);
    if (body.length > 0) this.socket.write(body);
    this.answer = new Promise((resolve) => {
      this.socket.on('data', (c: Buffer) => {
        this.data = Buffer.concat([this.data, c]);
        const r = parsed(this.data);
        if (r) resolve(r);
      });
    });
  }

  get answered(): boolean {
    return parsed(this.data) !== undefined;
  }
}

async function heldMetrics(githa: GithaProcess): Promise<{ held: number; peak: number; refused: Record<string, number> }> {
  const text = await (await fetch(`${githa.adminUrl}/metrics`)).text();
  const gauge = (kind: string): number => Number(new RegExp(`^githa_held_bytes\\{kind="${kind}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  const refused = Object.fromEntries([...text.matchAll(/^githa_held_bytes_refusals_total\{budget="(\w+)"\} (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
  return { held: gauge('held'), peak: gauge('peak'), refused };
}

describe('memory budgets against unauthenticated memory exhaustion (issue 19 item 1)', () => {
  const cluster = useCluster({ backends: 2 });

  it('bounds what open gzip command lists hold, per request and per process, while a clone and a push still work', async () => {
    const repo = 'mem/app';
    await cluster().createRepository(repo);
    const githa = await startGitha(cluster(), { endpoints: ['http'], config: { verify: { intervalMs: 0 }, memory: { maxHeldBytes: BUDGET, maxHeldBytesPerRequest: PER_REQUEST } } });
    const port = Number(new URL(githa.httpUrl).port);
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'one\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    const path = `/${repo}.git/git-receive-pack`;
    const gzip = { 'content-encoding': 'gzip' };
    // Sync-flushed, never finished: the attacker's gzip stream stays open, as its connection does.
    const open = (bytes: number): Buffer => gzipSync(commandList(bytes, sha), { level: 9, finishFlush: constants.Z_SYNC_FLUSH });
    const attackers: OpenPost[] = [];
    try {
      // Over the per-request budget (4 MiB each, under the old 32 MiB cap): each is refused 413 at the budget, all at once
      // (seven: together they stay under the process's budget, which the next step fills).
      const big = open(4 * 1024 * 1024);
      expect(big.length).toBeLessThan(256 * 1024);
      const over = Array.from({ length: 7 }, () => new OpenPost(port, path, gzip, big));
      attackers.push(...over);
      for (const a of over) {
        const r = await a.answer;
        expect(r.status, r.body).toBe(413);
        expect(r.body).toMatch(/^githa: the push command list is larger than githa holds for one request \(131072 bytes, memory\.maxHeldBytesPerRequest\)/);
      }

      // Under it, stalled: held until the process's budget is full; the next ones are refused 503 + Retry-After.
      const small = open(STALLED);
      for (let i = 1; i <= 12; i++) {
        const a = new OpenPost(port, path, gzip, small);
        attackers.push(a);
        const seen = await waitFor(`attacker ${i} held or answered`, async () => (a.answered ? 'answered' : (await heldMetrics(githa)).held >= i * STALLED ? 'held' : undefined), 20_000);
        if (i <= 10) {
          expect(seen, `attacker ${i}`).toBe('held');
          continue;
        }
        expect(seen, `attacker ${i}`).toBe('answered');
        const r = await a.answer;
        expect(r.status, r.body).toBe(503);
        expect(r.headers['retry-after']).toBe('5');
        expect(r.body).toMatch(/^githa: githa holds as much for other requests as it may \(memory\.maxHeldBytes\); try again later/);
      }
      const during = await heldMetrics(githa);
      expect(during.held).toBe(10 * STALLED);
      expect(during.peak).toBeLessThanOrEqual(BUDGET);
      expect(during.refused.request).toBe(7);
      expect(during.refused.process).toBe(2);

      // Meanwhile, with the ten stalled connections still open: a push and a clone work.
      const next = await git.commit(work, { 'README.md': 'two\n' }, 'second');
      await git.push(work, githa.url(repo), ['main']);
      const clone = await git.clone(githa.url(repo));
      expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': next });
      expect((await heldMetrics(githa)).peak).toBeLessThanOrEqual(BUDGET);
      expect(attackers.slice(7, 17).every((a) => !a.answered)).toBe(true);
      expect(githa.proc.exitCode).toBeNull();
      expect((await fetch(`${githa.adminUrl}/readyz`)).status).toBe(200);
    } finally {
      for (const a of attackers) a.socket.destroy();
    }
    // The attackers gone, what they held is given back.
    await waitFor('held bytes given back', async () => (await heldMetrics(githa)).held === 0);
  });

  it('answers a caller without access before reading its body (auth.http.mode githa)', async () => {
    const c = cluster();
    await c.createRepository('mem/secret');
    const usersFile = join(c.dir, 'githa-users-mem');
    const hash = (pw: string): Promise<string> => bcrypt({ password: pw, salt: randomBytes(16), costFactor: 4, outputType: 'encoded' });
    writeFileSync(usersFile, `alice:${await hash('alice-pw')}\nmallory:${await hash('mallory-pw')}\n`);
    const githa = await startGitha(c, {
      endpoints: ['http'],
      config: {
        verify: { intervalMs: 0 },
        auth: { http: { mode: 'githa', usersFile } },
        access: { default: 'none', rules: [{ repos: 'mem/**', users: ['alice'], access: 'write' }] },
        memory: { maxHeldBytes: BUDGET, maxHeldBytesPerRequest: PER_REQUEST },
      },
    });
    const port = Number(new URL(githa.httpUrl).port);
    const authorization = `Basic ${Buffer.from('mallory:mallory-pw').toString('base64')}`;
    // The head alone, announcing 100 MB of gzip body that never comes: the answer must not wait for it.
    const headOnly = new OpenPost(port, '/mem/secret.git/git-receive-pack', { authorization, 'content-encoding': 'gzip' }, Buffer.alloc(0));
    try {
      const r = await headOnly.answer;
      expect(r.status, r.body).toBe(404);
      expect(r.body).toMatch(/^githa: .*not found/);
      // The same for a missing repository's name: the answer rests on the name alone.
      const missing = new OpenPost(port, '/mem/nothing-here.git/git-receive-pack', { authorization }, Buffer.alloc(0));
      const m = await missing.answer;
      missing.socket.destroy();
      expect(m.status).toBe(r.status);
      expect(m.body.replaceAll('nothing-here', 'secret')).toBe(r.body);
      expect((await heldMetrics(githa)).peak).toBe(0);
    } finally {
      headOnly.socket.destroy();
    }
  });
});
