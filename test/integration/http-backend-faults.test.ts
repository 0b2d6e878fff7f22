/**
 * What a client sees when a backend's answer to githa's own listing is not a
 * listing (docs/protocol.md "Differences from a stock backend"), with the real
 * git against a canned HTTP backend (test/support/fake-backend.ts) and a real
 * redis-server:
 *
 * - an `ERR` packet: the backend's own reason, shown by git exactly as when it
 *   talks to the backend directly (`fatal: remote error: …`), not githa's
 *   "ended its answer before a flush-pkt";
 * - malformed pkt-lines: the backend's fault, so 502, never the 400 of a
 *   client's malformed request.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { errPkt, startFakeBackend } from '../support/fake-backend.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { raw } from '../support/untouched.js';

const cluster = useCluster({ backends: 1 });
const REASON = 'access denied: refused/app is disabled by the administrator';

/** A well-formed pkt-line that no ls-refs answer contains. */
function pkt(s: string): Buffer {
  return Buffer.concat([Buffer.from((Buffer.byteLength(s) + 4).toString(16).padStart(4, '0')), Buffer.from(s)]);
}

describe('backend answers that are not listings', () => {
  it("passes a backend's ERR packet to git as the backend's own reason, for v0 and v2 clients", async () => {
    const c = cluster();
    const fake = await startFakeBackend({ 'refused/app.git': { body: errPkt(REASON) } });
    const githa = await startGitha(c, { only: ['b1'], endpoints: ['http'], singleCopy: true, backends: { b1: { http: fake.httpUrl } } });
    const git = GitClient.forCluster(c);

    const direct = await git.run(['ls-remote', `${fake.httpUrl}refused/app.git`], { allowFailure: true });
    expect(direct.code).not.toBe(0);
    expect(direct.stderr).toContain(`fatal: remote error: ${REASON}`);

    for (const version of [2, 0] as const) {
      const through = await git.run(['ls-remote', githa.url('refused/app')], { allowFailure: true, protocolVersion: version });
      expect(through.code).not.toBe(0);
      expect(through.stderr).toContain(`fatal: remote error: ${REASON}`);
      expect(through.stderr).not.toMatch(/flush-pkt|returned error/);
    }
    const answer = await raw(githa.httpUrl, 'GET', '/refused/app.git/info/refs?service=git-upload-pack');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/x-git-upload-pack-advertisement');
    expect(answer.body).toEqual(errPkt(REASON));
  });

  it.each([
    ['bad pkt-line length', 'garbage/app.git', Buffer.from('zzzz not a pkt-line at all\n')],
    ['pkt-lines that are no ls-refs answer', 'skewed/app.git', Buffer.concat([pkt('hello world\n'), Buffer.from('0000')])],
  ])('a malformed backend answer (%s) is the backend\'s fault: 502, not 400', async (_what, repo, body) => {
    const c = cluster();
    const fake = await startFakeBackend({ [repo]: { body } });
    const githa = await startGitha(c, { only: ['b1'], endpoints: ['http'], singleCopy: true, backends: { b1: { http: fake.httpUrl } } });

    const answer = await raw(githa.httpUrl, 'GET', `/${repo}/info/refs?service=git-upload-pack`);
    expect(answer.status).toBe(502);
    expect(answer.body.toString()).toMatch(/backend b1 sent a malformed (answer|ref advertisement)/);
    const through = await GitClient.forCluster(c).run(['ls-remote', githa.url(repo)], { allowFailure: true });
    expect(through.code).not.toBe(0);
    expect(through.stderr).toMatch(/The requested URL returned error: 502/);
    expect(githa.logs()).toContain('GITHA_ERR_BACKEND_PROTOCOL');
  });
});
