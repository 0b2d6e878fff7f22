/**
 * Hostile input and limits at the front doors (issue 7, parts 4 and 5): the
 * corpus of test/fixtures/hostile sent raw to githa's HTTP port and git://
 * port, gzip bombs, oversized command lists, too many connections, and slow
 * clients. Each is answered with a clear refusal, touches no backend, leaves
 * Redis unchanged (test/support/untouched.ts), and a clone works afterwards.
 */
import { connect, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { gitDaemonRequests, httpRequests, packetBytes, pkt, pktLines, receivePack, repositoryNames, urlPath } from '../support/hostile-corpus.js';
import { exchange, raw, untouched } from '../support/untouched.js';
import { waitFor } from '../support/wait.js';

const ZERO = '0'.repeat(40);
const FLUSH = Buffer.from('0000', 'latin1');
const RECEIVE = { 'content-type': 'application/x-git-receive-pack-request' };

/** Work that is not driven by the requests under test is off (as in http-hostile.test.ts): anything Redis or a backend sees came from them. */
const QUIET = { singleCopy: true, git: true } as const;

/** An HTTP answer read off a raw socket: status, headers (lower-case), body. */
function parseHttp(data: Buffer): { status: number; headers: Record<string, string>; body: string } {
  const text = data.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = (end < 0 ? text : text.slice(0, end)).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head[0] ?? '')?.[1] ?? 0);
  const headers = Object.fromEntries(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  let body = end < 0 ? '' : text.slice(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    // RFC 9112 7.1: size in hex, CRLF, data, CRLF; a zero size ends it.
    let out = '';
    for (let rest = body; ; ) {
      const nl = rest.indexOf('\r\n');
      const size = parseInt(rest.slice(0, nl), 16);
      if (!(size > 0)) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  }
  return { status, headers, body };
}

/** Opens a TCP connection (from `localAddress`) and keeps it open, sending nothing. */
async function hold(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

describe('githa front ends against hostile input and too many clients', () => {
  const cluster = useCluster({ backends: 2 });

  async function seeded(repo: string, githa: GithaProcess): Promise<{ git: GitClient; sha: string }> {
    await cluster().createRepository(repo);
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': `${repo}\n` }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    return { git, sha };
  }

  async function clonesFine(git: GitClient, githa: GithaProcess, repo: string, sha: string): Promise<void> {
    for (const url of [githa.url(repo), githa.gitUrl(repo)]) {
      const clone = await git.clone(url);
      expect(await git.forEachRef(clone, 'refs/remotes/origin/main'), url).toEqual({ 'refs/remotes/origin/main': sha });
    }
    expect(githa.proc.exitCode).toBeNull();
    expect((await fetch(`${githa.adminUrl}/readyz`)).status).toBe(200);
  }

  it('refuses the hostile corpus over HTTP and git:// with clear errors, touching no backend and not Redis', async () => {
    const repo = 'corpus/app';
    const githa = await startGitha(cluster(), { ...QUIET, config: { verify: { intervalMs: 0 }, http: { maxCommands: 5_000, maxInflatedBytes: 1024 * 1024 } } });
    const { git, sha } = await seeded(repo, githa);
    const gitPort = githa.gitPort!;
    const httpPort = Number(new URL(githa.httpUrl).port);

    await untouched(cluster(), githa, async () => {
      // Raw HTTP requests node's parser or githa's classifier refuses: a clear answer, then the connection closes.
      for (const c of httpRequests) {
        const { data, closed } = await exchange(httpPort, c.request(`${repo}.git`));
        const r = parseHttp(data);
        expect(r.status, `${c.what}: ${data.toString('latin1').slice(0, 200)}`).toBe(c.status);
        expect(r.headers['content-type'], c.what).toMatch(/^text\/plain/);
        expect(r.body, c.what).toMatch(/^githa: /);
        expect(r.body, c.what).toMatch(c.message);
        if (c.status !== 404) expect(closed, `${c.what}: connection closed`).toBe(true);
      }

      // Repository names, over both transports.
      for (const c of repositoryNames) {
        const what = JSON.stringify(c.name).slice(0, 60);
        const http = await raw(githa.httpUrl, 'GET', `/${urlPath(c.name)}/info/refs?service=git-upload-pack`);
        expect(http.status, what).toBe(400);
        expect(http.body.toString('utf8'), what).toMatch(/^githa: invalid repository name/);
        const daemon = await exchange(gitPort, pkt(Buffer.from(`git-upload-pack /${c.name}\0host=127.0.0.1\0`, 'utf8')));
        expect(daemon.data.toString('latin1'), what).toMatch(/^[0-9a-f]{4}ERR githa: /);
        expect(daemon.closed, what).toBe(true);
      }

      // git:// request lines.
      for (const c of gitDaemonRequests) {
        const { data, closed } = await exchange(gitPort, pkt(c.bytes));
        expect(data.toString('latin1'), c.what).toMatch(/^[0-9a-f]{4}ERR githa: /);
        expect(data.toString('latin1'), c.what).toMatch(c.message);
        expect(closed, c.what).toBe(true);
      }

      // Broken pkt-lines: as git://'s request, and as a push's body.
      for (const c of pktLines) {
        const daemon = await exchange(gitPort, c.bytes);
        expect(daemon.data.toString('latin1'), c.what).toMatch(/^[0-9a-f]{4}ERR githa: /);
        expect(daemon.closed, c.what).toBe(true);
        const http = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-receive-pack`, c.bytes, RECEIVE);
        expect(http.status, c.what).toBe(400);
        expect(http.body.toString('utf8'), c.what).toMatch(/^githa: /);
      }

      // Push command lists with bad object ids and ref names.
      for (const c of receivePack) {
        const http = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-receive-pack`, packetBytes(c.packets), RECEIVE);
        expect(http.status, c.what).toBe(400);
        expect(http.body.toString('utf8'), c.what).toMatch(c.message);
      }

      // Thousands of refs: 20 000 commands over http.maxCommands (5000), plain and gzip.
      const commands = Array.from({ length: 20_000 }, (_, i) => pkt(`${ZERO} ${sha} refs/heads/flood-${i}${i === 0 ? '\0report-status' : ''}\n`));
      const flood = Buffer.concat([...commands, FLUSH]);
      for (const [body, headers] of [
        [flood, RECEIVE],
        [gzipSync(flood), { ...RECEIVE, 'content-encoding': 'gzip' }],
      ] as const) {
        const r = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-receive-pack`, body, headers);
        expect(r.status).toBe(413);
        expect(r.body.toString('utf8')).toMatch(/^githa: (more than 5000 commands|the push command list is larger than)/);
      }

      // A gzip bomb as a push's command list: 64 MiB of one repeated command inflates past http.maxInflatedBytes (1 MiB).
      const line = pkt(`${ZERO} ${sha} refs/heads/bomb\n`);
      const bomb = gzipSync(Buffer.concat([pkt(`${ZERO} ${sha} refs/heads/bomb\0report-status\n`), Buffer.alloc(line.length * 20_000).fill(line)]), { level: 9 });
      expect(bomb.length).toBeLessThan(64 * 1024);
      const r = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-receive-pack`, bomb, { ...RECEIVE, 'content-encoding': 'gzip' });
      expect(r.status).toBe(413);
      expect(r.body.toString('utf8')).toMatch(/^githa: (the push command list is larger than 1048576 bytes|more than 5000 commands)/);
    });
    expect(await cluster().redis.cli('EXISTS', `githa:repo:{${repo}.git}:writing`, `githa:lock:{${repo}.git}`)).toBe('0');
    await clonesFine(git, githa, repo, sha);
  });

  it('caps what a gzip fetch request inflates to, and says so', async () => {
    const repo = 'corpus/gzip';
    const githa = await startGitha(cluster(), { ...QUIET, config: { verify: { intervalMs: 0 }, http: { maxInflatedBytes: 1024 * 1024 } } });
    const { git, sha } = await seeded(repo, githa);
    const versions = await cluster().redis.cli('HGETALL', `githa:repo:{${repo}.git}:versions`);
    // 32 MiB of "have" lines in ~40 KiB of gzip.
    const have = pkt(`have ${sha}\n`);
    const body = gzipSync(Buffer.concat([pkt(`want ${sha} side-band-64k\n`), FLUSH, Buffer.alloc(32 * 1024 * 1024).fill(have)]), { level: 9 });
    const r = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-upload-pack`, body, {
      'content-type': 'application/x-git-upload-pack-request',
      'content-encoding': 'gzip',
    });
    // An upload-pack answer carries githa's error as an ERR packet (git: "fatal: remote error: githa: …").
    expect(r.body.toString('latin1')).toMatch(/ERR githa: the gzip request body inflates to more than 1048576 bytes/);
    expect(await cluster().redis.cli('HGETALL', `githa:repo:{${repo}.git}:versions`)).toBe(versions);
    // A real fetch whose request git gzips (over 1 KiB: many wants) still works.
    const work = await git.init();
    await git.fetch(work, githa.url(repo), ['+refs/heads/*:refs/remotes/origin/*']);
    await clonesFine(git, githa, repo, sha);
  });

  it('answers a client over its connection limit 429 with Retry-After (HTTP) or an ERR packet (git://); the server limit 503', async () => {
    const repo = 'limits/app';
    const githa = await startGitha(cluster(), {
      ...QUIET,
      config: {
        verify: { intervalMs: 0 },
        http: { maxConnectionsPerClient: 3, maxConnections: 5 },
        gitDaemon: { allowPush: false, maxConnectionsPerClient: 2, maxConnections: 100 },
      },
    });
    const { git, sha } = await seeded(repo, githa);
    const httpPort = Number(new URL(githa.httpUrl).port);
    const held: Socket[] = [];
    try {
      await untouched(cluster(), githa, async () => {
        for (let i = 0; i < 3; i++) held.push(await hold(httpPort));
        const r = await raw(githa.httpUrl, 'GET', `/${repo}.git/info/refs?service=git-upload-pack`);
        expect(r.status).toBe(429);
        expect(r.headers['retry-after']).toBe('5');
        expect(r.headers.connection).toBe('close');
        expect(r.body.toString('utf8')).toBe('githa: too many connections from your address (at most 3); try again later\n');
        // git shows the text body of a refused advertisement.
        const refused = await git.run(['ls-remote', githa.url(repo)], { allowFailure: true });
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/429|too many connections/);

        // Another address may still connect, up to the server's limit (5): then 503.
        for (let i = 0; i < 2; i++) held.push(await hold(httpPort, '127.0.0.2'));
        const full = await exchange(httpPort, Buffer.from(`GET /${repo}.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: githa\r\n\r\n`), 10_000, '127.0.0.3');
        const busy = parseHttp(full.data);
        expect(busy.status).toBe(503);
        expect(busy.headers['retry-after']).toBe('5');
        expect(busy.body).toMatch(/^githa: githa is serving as many connections as it may/);

        // git://: two held, the third is refused with an ERR packet git shows as "remote error".
        for (let i = 0; i < 2; i++) held.push(await hold(githa.gitPort!));
        const daemon = await git.run(['ls-remote', githa.gitUrl(repo)], { allowFailure: true });
        expect(daemon.code).not.toBe(0);
        expect(daemon.stderr).toContain('fatal: remote error: githa: too many connections from your address (at most 2); try again later');
      });
    } finally {
      for (const s of held) s.destroy();
    }
    // Closed connections free their slots.
    await waitFor('HTTP slots freed', async () => (await raw(githa.httpUrl, 'GET', `/${repo}.git/info/refs?service=git-upload-pack`)).status === 200, 15_000, { intervalMs: 100 });
    await clonesFine(git, githa, repo, sha);
  });

  it('cuts clients that stall, never one whose data keeps flowing', async () => {
    const repo = 'limits/slow';
    const githa = await startGitha(cluster(), {
      ...QUIET,
      config: { verify: { intervalMs: 0 }, http: { headersTimeoutMs: 2_000, idleTimeoutMs: 3_000 }, gitDaemon: { allowPush: false, requestTimeoutMs: 2_000 } },
    });
    const { git, sha } = await seeded(repo, githa);
    const httpPort = Number(new URL(githa.httpUrl).port);
    const command = Buffer.concat([pkt(`${sha} ${'1'.repeat(40)} refs/heads/main\0report-status\n`), FLUSH]);
    await untouched(cluster(), githa, async () => {
      // Half a request head, then nothing: 408 after headersTimeout.
      const head = await exchange(httpPort, Buffer.from(`GET /${repo}.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: githa\r\n`), 20_000);
      expect(head.closed).toBe(true);
      const timedOut = parseHttp(head.data);
      expect(timedOut.status).toBe(408);
      expect(timedOut.body).toBe('githa: no complete request head within 2 s\n');

      // A push that stops half-way through its command list: cut after idleTimeout, before anything is locked.
      const stalled = await exchange(
        httpPort,
        Buffer.concat([Buffer.from(`POST /${repo}.git/git-receive-pack HTTP/1.1\r\nHost: githa\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: 1000\r\n\r\n`), command.subarray(0, 20)]),
        20_000,
      );
      expect(stalled.closed).toBe(true);

      // git://: no request line within gitDaemon.requestTimeoutMs.
      const silent = await exchange(githa.gitPort!, Buffer.alloc(0), 20_000);
      expect(silent.closed).toBe(true);
      expect(silent.data.toString('latin1')).toMatch(/^[0-9a-f]{4}ERR githa: no request within 2 s\n$/);
      const partial = await exchange(githa.gitPort!, Buffer.from('00'), 20_000);
      expect(partial.closed).toBe(true);
      expect(partial.data.toString('latin1')).toMatch(/ERR githa: no request within 2 s/);
    });

    // A client dripping its command list one packet at a time, each gap well under idleTimeout (3 s), over more than
    // that in all (13 gaps of 350 ms), is not cut: it gets the answer (here: githa's refusal of the malformed last
    // line, so no backend is needed). That answer is the evidence: githa can only name the bad object id once it has
    // read the last line, sent after all the others.
    const lines = [...Array.from({ length: 12 }, (_, i) => pkt(`${sha} ${'1'.repeat(40)} refs/heads/drip-${i}${i === 0 ? '\0report-status' : ''}\n`)), pkt('zz not a command\n'), FLUSH];
    const total = lines.reduce((n, b) => n + b.length, 0);
    const socket = await hold(httpPort);
    const answer: Buffer[] = [];
    let written = 0;
    let writtenAtAnswer = -1;
    socket.on('data', (c: Buffer) => {
      if (answer.length === 0) writtenAtAnswer = written;
      answer.push(c);
    });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write(`POST /${repo}.git/git-receive-pack HTTP/1.1\r\nHost: githa\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: ${total}\r\nConnection: close\r\n\r\n`);
    for (const l of lines) {
      await new Promise((r) => setTimeout(r, 350));
      // githa answers as soon as it reads the bad line (before the flush): only then may the connection end.
      if (answer.length > 0) break;
      expect(socket.destroyed, `cut while data was flowing, after ${written} of ${lines.length} packets`).toBe(false);
      socket.write(l);
      written++;
    }
    await closed;
    // Nothing came back before the bad (13th) line was written: no timeout answer, no early cut.
    expect(writtenAtAnswer).toBeGreaterThanOrEqual(lines.length - 1);
    const r = parseHttp(Buffer.concat(answer));
    expect(r.status).toBe(400);
    expect(r.body).toBe('githa: invalid object id in push command\n');
    expect(await cluster().redis.cli('EXISTS', `githa:repo:{${repo}.git}:writing`, `githa:lock:{${repo}.git}`)).toBe('0');
    await clonesFine(git, githa, repo, sha);
  });
});
