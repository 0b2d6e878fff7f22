/**
 * Hostile and malformed smart-HTTP requests: githa answers each with a clear
 * 4xx (or a git-protocol rejection), never passes it to a backend, never
 * touches Redis, and stays healthy (design: "Write path" 1, "Safety rules").
 *
 * "Touches no backend" and "leaves Redis unchanged" are checked by
 * test/support/untouched.ts: sentinel requests in the backends' logs before
 * and after, DEBUG DIGEST-VALUE of every key (and the health verdict of each
 * backend), and INFO commandstats. More hostile cases (the corpus of
 * test/fixtures/hostile, limits, slow clients, git://) are in limits.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { refOnDisk } from '../support/backend-refs.js';
import { raw, untouched as untouchedIn, type RawResponse } from '../support/untouched.js';

const ZERO = '0'.repeat(40);

/**
 * POSTs with a Content-Length of `declared` bytes, sends only `partial`, waits
 * for `meanwhile`, then closes the connection (a client that goes away).
 */
async function breakOff(base: string, path: string, contentType: string, declared: number, partial: Buffer, meanwhile: () => Promise<void>): Promise<void> {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => {});
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: ${contentType}\r\nContent-Length: ${declared}\r\n\r\n`);
  socket.write(partial);
  await meanwhile();
  socket.destroy();
}

function pkt(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([Buffer.from((b.length + 4).toString(16).padStart(4, '0'), 'latin1'), b]);
}

const FLUSH = Buffer.from('0000', 'latin1');

/**
 * githa's work that is not driven by the requests under test and touches
 * repositories is off here: the verifier's sweep at start, and copies to
 * further backends after a push (one copy per push, no background
 * replication). Whatever reaches a backend or a repository's keys then came
 * from the hostile requests. Health probes stay on; they touch neither (see above).
 */
const QUIET = { singleCopy: true, config: { verify: { intervalMs: 0 } } };

describe('githa smart HTTP against hostile requests', () => {
  const cluster = useCluster({ backends: 3 });

  /** No backend saw a request and Redis neither changed nor received a command from githa (test/support/untouched.ts). */
  const untouched = (githa: GithaProcess, requests: () => Promise<void>): Promise<void> => untouchedIn(cluster(), githa, requests);

  function expectClearRefusal(r: RawResponse, what: string, pattern: RegExp): void {
    expect(r.status, `${what}: ${r.body.toString('utf8')}`).toBeGreaterThanOrEqual(400);
    expect(r.status, what).toBeLessThan(500);
    expect(String(r.headers['content-type']), what).toMatch(/^text\/plain/);
    expect(r.body.toString('utf8'), what).toMatch(pattern);
  }

  it('refuses hostile repository paths with a 4xx and a clear message, touching no backend and not Redis', async () => {
    const repo = 'hostile/app';
    await cluster().createRepository(repo);
    const githa = await startGitha(cluster(), QUIET);
    const git = GitClient.forCluster(cluster());
    // githa knows the repository (adopted), so Redis has something that must not change.
    await git.lsRemote(githa.url(repo));

    const adv = '/info/refs?service=git-upload-pack';
    const paths: Array<[string, RegExp]> = [
      [`/../etc/passwd${adv}`, /invalid repository name: "\." or "\.\." component/],
      [`/%2e%2e/x.git${adv}`, /invalid repository name: "\." or "\.\." component/],
      [`/a/%2e%2e/b.git${adv}`, /invalid repository name: "\." or "\.\." component/],
      [`/a/%2E%2E/%2e%2e/etc/passwd${adv}`, /invalid repository name: "\." or "\.\." component/],
      [`/hostile/../hostile/app.git${adv}`, /invalid repository name: "\." or "\.\." component/],
      [`/./hostile/app.git${adv}`, /invalid repository name: "\." or "\.\." component/],
      [`/x%00.git${adv}`, /invalid repository name: control character/],
      [`/a%2fb.git${adv}`, /invalid repository name: encoded "\/"/],
      [`/a%2Fb.git${adv}`, /invalid repository name: encoded "\/"/],
      [`//etc/x.git${adv}`, /invalid repository name: empty path component/],
      [`/hostile//app.git${adv}`, /invalid repository name: empty path component/],
      [`/x%01y.git${adv}`, /invalid repository name: control character/],
      [`/x%7fy.git${adv}`, /invalid repository name: control character/],
      [`/a%5c..%5cb.git${adv}`, /invalid repository name: backslash/],
      [`/-x.git${adv}`, /invalid repository name: component starting with "-"/],
      [`/hostile/--upload-pack=touch.git${adv}`, /invalid repository name: component starting with "-"/],
      [`/.hidden/x.git${adv}`, /invalid repository name: component starting with "\."/],
      [`/${'a'.repeat(300)}.git${adv}`, /invalid repository name: too long/],
      [`/${'a/'.repeat(150)}x.git${adv}`, /invalid repository name: too (long|many components)/],
      [`/%252e%252e/x.git${adv}`, /invalid repository name: percent sign/],
      [`/x%252fy.git${adv}`, /invalid repository name: percent sign/],
      [`/x%zz.git${adv}`, /invalid repository name: malformed percent-encoding/],
      [`/x%c0%af.git${adv}`, /invalid repository name: not valid UTF-8/],
      [`/~root/x.git${adv}`, /invalid repository name: "~user"/],
      [`/a.git/b.git${adv}`, /invalid repository name: repository inside a repository/],
      [`/x;id.git${adv}`, /invalid repository name: character not allowed/],
      [`/x%20y.git${adv}`, /invalid repository name: character not allowed/],
      [`/x%e2%80%aey.git${adv}`, /invalid repository name: character not allowed/],
      // The same names on the other endpoints.
      ['/../etc/passwd/git-upload-pack', /invalid repository name/],
      ['/%2e%2e/x.git/git-receive-pack', /invalid repository name/],
      ['/x%00.git/info/refs?service=git-receive-pack', /invalid repository name/],
    ];
    await untouched(githa, async () => {
      for (const [path, message] of paths) {
        const method = !path.includes('?') && path.endsWith('-pack') ? 'POST' : 'GET';
        const body = method === 'POST' ? Buffer.concat([pkt(`${ZERO} ${'1'.repeat(40)} refs/heads/x\0report-status\n`), FLUSH]) : undefined;
        const r = await raw(githa.httpUrl, method, path, body, method === 'POST' ? { 'content-type': 'application/x-git-upload-pack-request' } : {});
        expectClearRefusal(r, `${method} ${path.slice(0, 80)}`, /^githa: /);
        expect(r.body.toString('utf8'), path.slice(0, 80)).toMatch(message);
        expect(r.status, path.slice(0, 80)).toBe(400);
      }
    });
    expect(githa.proc.exitCode).toBeNull();
  });

  it('refuses dumb HTTP, unknown services and wrong methods with a 4xx, touching no backend and not Redis', async () => {
    const repo = 'hostile/dumb';
    await cluster().createRepository(repo);
    const githa = await startGitha(cluster(), QUIET);
    const git = GitClient.forCluster(cluster());
    await git.lsRemote(githa.url(repo));
    const r = `/${repo}.git`;
    const dumb = /dumb HTTP is not supported/;
    const cases: Array<[string, string, RegExp]> = [
      ['GET', `${r}/HEAD`, dumb],
      ['GET', `${r}/info/refs`, dumb],
      ['GET', `${r}/objects/info/packs`, dumb],
      ['GET', `${r}/objects/info/alternates`, dumb],
      ['GET', `${r}/objects/12/${'3'.repeat(38)}`, dumb],
      ['GET', `${r}/objects/pack/pack-${'a'.repeat(40)}.pack`, dumb],
      ['HEAD', `${r}/HEAD`, /.*/],
      ['GET', `${r}/config`, /not a Git smart-HTTP request/],
      ['GET', `${r}/info/refs?service=git-foo`, /unknown service "git-foo"/],
      ['GET', `${r}/info/refs?service=`, /unknown service ""/],
      ['GET', `${r}/info/refs?service=git-upload-pack&service=git-receive-pack`, /more than one service parameter/],
      ['GET', `${r}/info/refs?service=GIT-UPLOAD-PACK`, /unknown service/],
      ['POST', `${r}/git-foo`, /not a Git smart-HTTP request/],
      ['POST', `${r}/git-upload-pack-x`, /not a Git smart-HTTP request/],
      ['GET', `${r}/git-upload-pack`, /method GET not allowed/],
      ['PUT', `${r}/git-receive-pack`, /method PUT not allowed/],
      ['DELETE', `${r}/git-receive-pack`, /method DELETE not allowed/],
      ['POST', `${r}/info/refs?service=git-upload-pack`, /method POST not allowed/],
      ['PUT', `${r}/info/refs?service=git-receive-pack`, /method PUT not allowed/],
      ['GET', '/', /not a Git smart-HTTP request/],
      ['GET', '/favicon.ico', /not a Git smart-HTTP request/],
    ];
    await untouched(githa, async () => {
      for (const [method, path, message] of cases) {
        const res = await raw(githa.httpUrl, method, path, method === 'GET' || method === 'HEAD' ? undefined : Buffer.from('0000'));
        const what = `${method} ${path}`;
        expect(res.status, what).toBeGreaterThanOrEqual(400);
        expect(res.status, what).toBeLessThan(500);
        if (method === 'HEAD') continue; // no body
        expectClearRefusal(res, what, /^githa: /);
        expect(res.body.toString('utf8'), what).toMatch(message);
      }
    });
  });

  it('answers malformed receive-pack bodies with a clear error, takes no lock, writes no marker, and the repository stays writable', async () => {
    const repo = 'hostile/malformed';
    await cluster().createRepository(repo);
    const githa = await startGitha(cluster(), QUIET);
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'malformed\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);

    const cmd = (old: string, next: string, ref: string, caps = 'report-status side-band-64k'): Buffer => pkt(`${old} ${next} ${ref}\0${caps}\n`);
    const bodies: Array<[string, Buffer, RegExp]> = [
      ['bad pkt-line hex', Buffer.from('zzzz0000'), /invalid pkt-line length header "zzzz"/],
      ['length 0003', Buffer.from('0003abc0000'), /invalid pkt-line length 0003/],
      ['length over 65520', Buffer.concat([Buffer.from('fff1'), Buffer.alloc(100, 0x61)]), /exceeds the maximum of 65520/],
      ['truncated command list, then EOF', cmd(sha, ZERO, 'refs/heads/main'), /ended before its command list did/],
      ['truncated pkt-line, then EOF', cmd(sha, ZERO, 'refs/heads/main').subarray(0, 30), /ended before its command list did/],
      ['bad old object id', Buffer.concat([cmd('z'.repeat(40), ZERO, 'refs/heads/main'), FLUSH]), /object id|push command/i],
      ['short new object id', Buffer.concat([cmd(sha, '1234', 'refs/heads/main'), FLUSH]), /object id|push command/i],
      ['ref name with a space', Buffer.concat([cmd(sha, ZERO, 'refs/heads/a b'), FLUSH]), /invalid ref name in push command/],
      ['ref name with a control character', Buffer.concat([cmd(sha, ZERO, 'refs/heads/a\x01b'), FLUSH]), /invalid ref name in push command/],
      ['no ref name', Buffer.concat([pkt(`${sha} ${ZERO}\0report-status\n`), FLUSH]), /malformed push command/],
      ['two NULs', Buffer.concat([pkt(`${sha} ${ZERO} refs/heads/main\0report-status\0x\n`), FLUSH]), /more than one NUL/],
      ['gzip that is not gzip', Buffer.from('this is not gzip'), /gzip/],
    ];
    await untouched(githa, async () => {
      for (const [what, body, message] of bodies) {
        const headers: Record<string, string> = { 'content-type': 'application/x-git-receive-pack-request' };
        if (what.startsWith('gzip')) headers['content-encoding'] = 'gzip';
        const r = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-receive-pack`, body, headers);
        const text = r.body.toString('utf8');
        if (r.status === 200) {
          // A git-protocol rejection: an ERR packet or side-band error naming the problem.
          // eslint-disable-next-line no-control-regex -- \x02 is the side-band channel byte for error messages (gitprotocol-common, sideband)
          expect(text, what).toMatch(/ERR githa: |\x02githa: /);
        } else {
          expectClearRefusal(r, what, /^githa: /);
        }
        expect(text, what).toMatch(message);
      }
    });
    expect(await cluster().redis.cli('EXISTS', `githa:repo:{${repo}.git}:writing`, `githa:lock:{${repo}.git}`)).toBe('0');

    // A ref name that only git's full rules refuse (githa checks framing only, docs/protocol.md):
    // the leader refuses it in the protocol, and githa records nothing and leaves no marker.
    const versionsBefore = await cluster().redis.cli('HGETALL', `githa:repo:{${repo}.git}:versions`);
    const funny = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-receive-pack`, Buffer.concat([cmd(sha, ZERO, 'refs/heads/../../x', 'report-status'), FLUSH]), {
      'content-type': 'application/x-git-receive-pack-request',
    });
    expect(funny.status).toBe(200);
    expect(funny.body.toString('latin1')).toContain('ng refs/heads/../../x funny refname');
    expect(await cluster().redis.cli('HGETALL', `githa:repo:{${repo}.git}:versions`)).toBe(versionsBefore);
    expect(await cluster().redis.cli('EXISTS', `githa:repo:{${repo}.git}:writing`, `githa:lock:{${repo}.git}`)).toBe('0');

    // The repository is still writable through githa.
    const next = await git.commit(work, { 'more.txt': 'more\n' }, 'second');
    await git.push(work, githa.url(repo), ['main']);
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(next);
  });

  it('understands a gzip-encoded, hand-built delete-only push', async () => {
    const repo = 'hostile/gzip';
    await cluster().createRepository(repo);
    const githa = await startGitha(cluster(), QUIET);
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'gzip\n' }, 'first');
    await git.push(work, githa.url(repo), ['main', 'main:refs/heads/doomed']);
    const versionsKey = `githa:repo:{${repo}.git}:versions`;
    const versions = async (): Promise<Record<string, number>> => {
      const lines = (await cluster().redis.cli('HGETALL', versionsKey)).split('\n');
      const map: Record<string, number> = {};
      for (let i = 0; i + 1 < lines.length; i += 2) map[lines[i]!] = Number(lines[i + 1]);
      return map;
    };
    const before = await versions();
    const max = Math.max(...Object.values(before));
    const leader = Object.keys(before).find((b) => before[b] === max)!;
    expect(await refOnDisk(cluster().backend(leader), repo, 'refs/heads/doomed')).toBe(sha);

    // As git sends a delete-only push: one command with capabilities, a flush, no pack.
    const plain = Buffer.concat([pkt(`${sha} ${ZERO} refs/heads/doomed\0report-status delete-refs agent=githa-test\n`), FLUSH]);
    const r = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-receive-pack`, gzipSync(plain), {
      'content-type': 'application/x-git-receive-pack-request',
      accept: 'application/x-git-receive-pack-result',
      'content-encoding': 'gzip',
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/x-git-receive-pack-result');
    // report-status without side-band: "unpack ok", "ok <ref>", flush.
    expect(r.body.toString('latin1')).toBe(`${pkt('unpack ok\n').toString('latin1')}${pkt('ok refs/heads/doomed\n').toString('latin1')}0000`);

    const after = await versions();
    expect(Math.max(...Object.values(after))).toBe(max + 1);
    expect(after[leader]).toBe(max + 1);
    expect(await refOnDisk(cluster().backend(leader), repo, 'refs/heads/doomed')).toBeUndefined();
    expect(await refOnDisk(cluster().backend(leader), repo, 'refs/heads/main')).toBe(sha);
    const refs = await git.lsRemote(githa.url(repo));
    expect(refs['refs/heads/doomed']).toBeUndefined();
    expect(refs['refs/heads/main']).toBe(sha);
    expect(await cluster().redis.cli('EXISTS', `githa:repo:{${repo}.git}:writing`)).toBe('0');
  });

  it('survives clients that break off mid-request: aborted uploads, and a gzip body corrupt after its command list', async () => {
    const repo = 'hostile/broken';
    await cluster().createRepository(repo);
    const githa = await startGitha(cluster(), QUIET);
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'broken\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    const versionsKey = `githa:repo:{${repo}.git}:versions`;
    const versionsBefore = await cluster().redis.cli('HGETALL', versionsKey);
    const busy = async (): Promise<boolean> =>
      (await cluster().redis.cli('EXISTS', `githa:repo:{${repo}.git}:writing`, `githa:lock:{${repo}.git}`)) !== '0';
    const settle = async (): Promise<void> => {
      const until = Date.now() + 15_000;
      while (Date.now() < until && (await busy())) await new Promise((r) => setTimeout(r, 50));
    };

    // 1. An upload-pack request whose body stops half-way, then the connection closes.
    const want = Buffer.concat([pkt(`want ${sha} side-band-64k\n`), pkt(`want ${sha}\n`)]);
    await breakOff(githa.httpUrl, `/${repo}.git/git-upload-pack`, 'application/x-git-upload-pack-request', 1_000_000, want, async () => {
      await new Promise((r) => setTimeout(r, 300));
    });
    expect(githa.proc.exitCode).toBeNull();

    // 2. A push whose connection closes in the middle of its pack, once githa has started the write.
    const command = Buffer.concat([pkt(`${sha} ${'1'.repeat(40)} refs/heads/main\0report-status side-band-64k\n`), FLUSH]);
    const partialPack = Buffer.concat([command, Buffer.from('PACK\0\0\0\x02\0\0\0\x01'), randomBytes(256 * 1024)]);
    let sawMarker = false;
    await breakOff(githa.httpUrl, `/${repo}.git/git-receive-pack`, 'application/x-git-receive-pack-request', 50_000_000, partialPack, async () => {
      const until = Date.now() + 10_000;
      while (!sawMarker && Date.now() < until) {
        sawMarker = (await cluster().redis.cli('EXISTS', `githa:repo:{${repo}.git}:writing`)) === '1';
        if (!sawMarker) await new Promise((r) => setTimeout(r, 10));
      }
    });
    expect(sawMarker).toBe(true);
    await settle();
    expect(await busy()).toBe(false);
    expect(githa.proc.exitCode).toBeNull();

    // 3. A gzip push whose command list inflates fine but whose compressed stream then breaks.
    const gz = gzipSync(Buffer.concat([command, Buffer.from('PACK\0\0\0\x02\0\0\0\x01'), randomBytes(2 * 1024 * 1024)]));
    const corrupt = Buffer.concat([gz.subarray(0, gz.length >> 1), randomBytes(4096)]);
    const answer = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-receive-pack`, corrupt, {
      'content-type': 'application/x-git-receive-pack-request',
      'content-encoding': 'gzip',
    }).then(
      (r) => `HTTP ${r.status}: ${r.body.toString('latin1')}`,
      (e: Error) => `connection error: ${e.message}`,
    );
    // Whatever the client gets (a refusal or a dropped connection), nothing may be acknowledged.
    expect(answer).not.toMatch(/ok refs\/heads\/main/);
    await settle();
    expect(await busy()).toBe(false);

    // githa is alive, nothing changed, and the repository is writable.
    expect(githa.proc.exitCode).toBeNull();
    expect((await fetch(`${githa.adminUrl}/healthz`)).status).toBe(200);
    expect(await cluster().redis.cli('HGETALL', versionsKey)).toBe(versionsBefore);
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(sha);
    const next = await git.commit(work, { 'more.txt': 'more\n' }, 'second');
    await git.push(work, githa.url(repo), ['main']);
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(next);
  });

  it('is healthy after all of it: a normal clone works', async () => {
    const repo = 'hostile/app';
    const githa = await startGitha(cluster(), QUIET);
    const git = GitClient.forCluster(cluster());
    // The same hostile requests again on this githa, all in one go, then a clone.
    const hostile = [
      '/../etc/passwd/info/refs?service=git-upload-pack',
      '/%2e%2e/x.git/info/refs?service=git-upload-pack',
      '/x%00.git/info/refs?service=git-upload-pack',
      '/a%2fb.git/git-upload-pack',
      `/${repo}.git/HEAD`,
      `/${repo}.git/info/refs?service=git-foo`,
    ];
    const answers = await Promise.all(hostile.map((p) => raw(githa.httpUrl, !p.includes('?') && p.endsWith('-pack') ? 'POST' : 'GET', p)));
    for (const a of answers) expect(a.status).toBeGreaterThanOrEqual(400);
    const malformed = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-receive-pack`, Buffer.from('zzzz'), {
      'content-type': 'application/x-git-receive-pack-request',
    });
    expect(malformed.status).toBe(400);

    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'still fine\n' }, 'fine');
    await git.push(work, githa.url(repo), ['main']);
    const clone = await git.clone(githa.url(repo));
    expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });
    expect((await fetch(`${githa.adminUrl}/readyz`)).status).toBe(200);
    expect(githa.proc.exitCode).toBeNull();
  });
});

