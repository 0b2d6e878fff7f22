/**
 * Review of issue 19's memory budgets (docs/security.md "Memory budgets"):
 * what a request holds is given back on every way it can end, against real
 * githa and backends. A leak would slowly refuse everything with 503, so each
 * case ends by waiting for githa_held_bytes{kind="held"} to be 0 again.
 * Cases: a client that goes while its upload-pack body is held (plain and
 * gzip) or while it streams to a backend, a body whose framing breaks while it
 * streams (both ended githa with an unhandled 'error' event before the fix),
 * a push whose client goes in the middle of its pack, and legitimate clones,
 * fetches and pushes (v0 and v2).
 */
import { connect, type Socket } from 'node:net';
import { constants, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { pkt } from '../support/hostile-corpus.js';
import { waitFor } from '../support/wait.js';

async function held(githa: GithaProcess): Promise<number> {
  const text = await (await fetch(`${githa.adminUrl}/metrics`)).text();
  return Number(/^githa_held_bytes\{kind="held"\} (\d+)/m.exec(text)?.[1] ?? NaN);
}

/** A raw POST: its head (announcing more than is sent) and `body`; the answer's bytes as they come. */
function post(port: number, path: string, type: string, headers: Record<string, string>, body: Buffer): { socket: Socket; data: () => string; closed: Promise<void> } {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  let data = '';
  socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const head = [`POST ${path} HTTP/1.1`, `host: 127.0.0.1:${port}`, `content-type: application/x-${type}-request`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.write(`${head.join('\r\n')}\r\n\r\n`);
  socket.write(body);
  return { socket, data: () => data, closed };
}

/** Valid upload-pack want lines, about `bytes` of them, no flush (the request is not over). */
function wants(sha: string, bytes: number): Buffer {
  const lines: Buffer[] = [];
  let total = 0;
  for (let i = 0; total < bytes; i++) {
    const line = pkt(`want ${sha}${i === 0 ? ' multi_ack_detailed side-band-64k ofs-delta' : ''}\n`);
    lines.push(line);
    total += line.length;
  }
  return Buffer.concat(lines);
}

describe('held bytes are given back on every path (issue 19 review)', () => {
  const cluster = useCluster({ backends: 2 });

  it('a client gone mid-body, a body broken mid-stream, a push cut mid-pack, and legitimate traffic leave nothing held', async () => {
    const repo = 'leak/app';
    await cluster().createRepository(repo);
    // Bodies over 64 KiB stream (unreplayable) to one backend; under it they are held.
    const githa = await startGitha(cluster(), { endpoints: ['http'], config: { verify: { intervalMs: 0 }, read: { maxReplayBodyBytes: 64 * 1024 }, memory: { maxHeldBytes: 8 * 1024 * 1024, maxHeldBytesPerRequest: 1024 * 1024 } } });
    const port = Number(new URL(githa.httpUrl).port);
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'one\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    await waitFor('nothing held after a push', async () => (await held(githa)) === 0);
    const uploadPack = `/${repo}.git/git-upload-pack`;

    // 1. Held upload-pack bodies (plain, then gzip sync-flushed): the client goes before its end.
    for (const gzip of [false, true]) {
      const raw = wants(sha, 32 * 1024);
      const body = gzip ? gzipSync(raw, { finishFlush: constants.Z_SYNC_FLUSH }) : raw;
      const c = post(port, uploadPack, 'git-upload-pack', { 'content-length': '10000000', ...(gzip ? { 'content-encoding': 'gzip' } : {}) }, body);
      await waitFor(`the ${gzip ? 'gzip ' : ''}body held`, async () => (await held(githa)) >= 32 * 1024);
      c.socket.destroy();
      await waitFor(`the ${gzip ? 'gzip ' : ''}body given back after the client went`, async () => (await held(githa)) === 0);
    }

    // 2. A streamed body (over maxReplayBodyBytes) whose client goes after its start went to a backend.
    const chunk = (b: Buffer): string => `${b.length.toString(16)}\r\n${b.toString('latin1')}\r\n`;
    const going = post(port, uploadPack, 'git-upload-pack', { 'transfer-encoding': 'chunked' }, Buffer.alloc(0));
    going.socket.write(chunk(wants(sha, 80 * 1024)), 'latin1');
    await waitFor('the streamed body held', async () => (await held(githa)) > 0);
    going.socket.destroy();
    await waitFor('the streamed body given back after the client went', async () => (await held(githa)) === 0);
    expect(githa.proc.exitCode).toBeNull();

    // 2b. A streamed body whose framing breaks after its start went to a backend.
    const broken = post(port, uploadPack, 'git-upload-pack', { 'transfer-encoding': 'chunked' }, Buffer.alloc(0));
    broken.socket.write(chunk(wants(sha, 80 * 1024)), 'latin1');
    broken.socket.write(chunk(Buffer.from('zzzz')), 'latin1');
    broken.socket.write('0\r\n\r\n');
    await waitFor('the broken streamed body answered', () => / 200 | 400 /.test(broken.data()) || undefined, 20_000, { detail: () => `answer so far: ${JSON.stringify(broken.data())}; exit: ${githa.proc.exitCode}; githa log tail: ${githa.logs().split('\n').slice(-12).join('\n')}` });
    await waitFor('the broken body given back', async () => (await held(githa)) === 0);
    broken.socket.destroy();

    // 3. A push whose client goes in the middle of its pack (after its command list was held).
    const next = await git.commit(work, { 'README.md': 'two\n' }, 'second');
    const commands = Buffer.concat([pkt(`${sha} ${next} refs/heads/main\0report-status side-band-64k\n`), Buffer.from('0000'), Buffer.from('PACK\0\0\0\x02\0\0\0\x03', 'latin1')]);
    const push = post(port, `/${repo}.git/git-receive-pack`, 'git-receive-pack', { 'content-length': '100000' }, commands);
    await waitFor('the push command list held', async () => (await held(githa)) > 0);
    push.socket.destroy();
    await waitFor('the push given back after its client went', async () => (await held(githa)) === 0, 20_000);

    // 4. Legitimate traffic, v0 and v2: clone, fetch, push; then nothing is held, and the cut push left no frozen repository.
    for (const v of ['0', '2']) {
      const clone = await git.clone(githa.url(repo), ['-c', `protocol.version=${v}`]);
      expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });
    }
    await git.push(work, githa.url(repo), ['main']);
    const fetched = await git.clone(githa.url(repo));
    await git.fetch(fetched, githa.url(repo), [], ['--depth=1']);
    await waitFor('nothing held after legitimate traffic', async () => (await held(githa)) === 0);
    expect(githa.proc.exitCode).toBeNull();
  });
});
