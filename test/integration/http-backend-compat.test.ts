/**
 * Stock HTTP backends set up as they are in the wild (issue 17), each a
 * lighttpd location of the dev backend (src/demo/backend.ts httpUrlAt):
 *
 * - 'v0': Git-Protocol is not passed to http-backend, which then speaks v0
 *   only: githa lists refs from the v0 advertisement and fetches with v0
 *   negotiation, so v0 and v2 clients clone and push and copies are made.
 * - 'nochunk': server.stream-request-body = 2 answers 411 to a chunked body:
 *   a client's push keeps its Content-Length; githa's own chunked pushes and
 *   its health check name the cause.
 * - 'moved': every request is redirected (301) to /git/: githa's own
 *   requests follow it.
 */
import { describe, expect, it } from 'vitest';
import { HttpBackendClient } from '../../src/backends/http.js';
import { ZERO_OID } from '../../src/protocol/object-id.js';
import { useCluster } from '../support/cluster.js';
import { GitClient, randomData } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { diskRefs } from '../support/backend-refs.js';
import { waitFor } from '../support/wait.js';

const cluster = useCluster({ backends: 2 });

function client(baseUrl: string, id = 'b1'): HttpBackendClient {
  return new HttpBackendClient({ id, baseUrl, timeoutMs: 20_000 });
}

describe('a backend that speaks only protocol v0', () => {
  it('serves v0 and v2 clients through githa, and githa copies from and to it', async () => {
    const c = cluster();
    const repo = 'compat/v0';
    await c.createRepository(repo);
    const [b1, b2] = c.backends;
    const githa = await startGitha(c, { endpoints: ['http'], backends: { b1: { http: b1!.httpUrlAt('v0') }, b2: { http: b2!.httpUrlAt('v0') } } });
    const git = GitClient.forCluster(c);

    // Both clients see a v0 server, as they would directly.
    expect(await git.negotiatedVersion(githa.url(repo))).toBe(0);

    const work = await git.init();
    const first = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, githa.url(repo), ['HEAD:refs/heads/main'], [], { protocolVersion: 0 });
    // The push's copy went to the other backend through githa's own v0 fetch.
    expect((await diskRefs(b1!, repo))['refs/heads/main']).toBe(first);
    expect((await diskRefs(b2!, repo))['refs/heads/main']).toBe(first);

    const v2clone = await git.clone(githa.url(repo), [], { protocolVersion: 2 });
    expect(await git.revParse(v2clone, 'HEAD')).toBe(first);
    const second = await git.commit(v2clone, { 'b.txt': 'b\n' }, 'second');
    await git.push(v2clone, githa.url(repo), ['HEAD:refs/heads/main'], [], { protocolVersion: 2 });
    expect((await diskRefs(b1!, repo))['refs/heads/main']).toBe(second);
    expect((await diskRefs(b2!, repo))['refs/heads/main']).toBe(second);

    const v0clone = await git.clone(githa.url(repo), [], { protocolVersion: 0 });
    expect(await git.revParse(v0clone, 'HEAD')).toBe(second);
  });

  it('githa own client: refs, HEAD and a pack from the v0 advertisement and negotiation', async () => {
    const c = cluster();
    const repo = 'compat/v0-client';
    await c.createRepository(repo);
    const b1 = c.backends[0]!;
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const head = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, b1.url('http', repo), ['HEAD:refs/heads/main']);
    const v0 = client(b1.httpUrlAt('v0'));
    try {
      expect(await v0.listRefs(repo)).toEqual([
        { name: 'HEAD', oid: head },
        { name: 'refs/heads/main', oid: head },
      ]);
      expect(await v0.headTarget(repo)).toBe('refs/heads/main');
      const chunks: Buffer[] = [];
      for await (const chunk of v0.fetchPack(repo, [head], [])) chunks.push(chunk);
      expect(Buffer.concat(chunks).subarray(0, 4).toString('latin1')).toBe('PACK');
      expect(await v0.listRefs('compat/missing')).toBeNull();
    } finally {
      await v0.close();
    }
  });
});

describe('a backend that refuses chunked request bodies (411)', () => {
  it('takes a client push through githa with its Content-Length', async () => {
    const c = cluster();
    const repo = 'compat/nochunk';
    await c.createRepository(repo);
    const b1 = c.backends[0]!;
    // One backend and no probe verdict in the way: this is about the push itself.
    const githa = await startGitha(c, {
      only: ['b1'],
      endpoints: ['http'],
      singleCopy: true,
      backends: { b1: { http: b1.httpUrlAt('nochunk') } },
      config: { health: { failuresToDown: 1_000_000 } },
    });
    const git = GitClient.forCluster(c);
    const work = await git.init();
    // 2 MiB of random data: the body cannot reach lighttpd with its headers,
    // and git sends it with a Content-Length (under http.postBuffer).
    const head = await git.commit(work, { 'big.bin': randomData(2 * 1024 * 1024) }, 'big');
    await git.run(['-c', 'http.postBuffer=16777216', 'push', '--porcelain', '--', githa.url(repo), 'HEAD:refs/heads/main'], { cwd: work });
    expect((await diskRefs(b1, repo))['refs/heads/main']).toBe(head);
  });

  it("names the cause when githa's own push is refused, and the health check reports it", async () => {
    const c = cluster();
    const repo = 'compat/nochunk-own';
    await c.createRepository(repo);
    const [b1, b2] = c.backends;
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const head = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, b1!.url('http', repo), ['HEAD:refs/heads/main']);

    const source = client(b1!.httpUrl, 'b1');
    const target = client(b2!.httpUrlAt('nochunk'), 'b2');
    try {
      const adv = await target.receivePackAdvertisement(repo);
      expect(adv).not.toBeNull();
      const push = target.pushPack(repo, [{ oldOid: ZERO_OID, newOid: head, ref: 'refs/heads/main' }], ['report-status'], source.fetchPack(repo, [head], []));
      await expect(push).rejects.toThrow(/backend b2 refuses chunked request bodies \(HTTP 411 Length Required\).*server\.stream-request-body = 0/);
      await expect(target.probe()).rejects.toThrow(/backend b2 refuses chunked request bodies/);
      await expect(source.probe()).resolves.toBeUndefined();
    } finally {
      await source.close();
      await target.close();
    }

    const githa = await startGitha(c, { endpoints: ['http'], backends: { b2: { http: b2!.httpUrlAt('nochunk') } } });
    const down = await waitFor('b2 reported down with the cause', () =>
      githa.logLines().find((l) => l.msg === 'backend down' && l.backend === 'b2' && /refuses chunked request bodies/.test(String(l.detail))),
    );
    expect(down).toBeDefined();
  });
});

describe('a backend that redirects (301)', () => {
  it("githa's own requests follow it within the backend: refs, fetch, advertisement and a relayed push", async () => {
    const c = cluster();
    const repo = 'compat/moved';
    await c.createRepository(repo);
    const [b1, b2] = c.backends;
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const head = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, b1!.url('http', repo), ['HEAD:refs/heads/main']);

    const source = client(b1!.httpUrlAt('moved'), 'b1');
    const target = client(b2!.httpUrlAt('moved'), 'b2');
    try {
      expect(await source.listRefs(repo)).toEqual([
        { name: 'HEAD', oid: head },
        { name: 'refs/heads/main', oid: head },
      ]);
      await expect(source.probe()).resolves.toBeUndefined();
      const adv = await target.receivePackAdvertisement(repo);
      expect(adv?.refs).toEqual([]);
      const report = await target.pushPack(
        repo,
        [{ oldOid: ZERO_OID, newOid: head, ref: 'refs/heads/main' }],
        ['report-status'],
        source.fetchPack(repo, [head], []),
      );
      expect(report).toEqual({ unpackOk: true, refs: [{ ref: 'refs/heads/main', ok: true }] });
      expect((await diskRefs(b2!, repo))['refs/heads/main']).toBe(head);
      expect(await target.listRefs(repo)).toEqual([
        { name: 'HEAD', oid: head },
        { name: 'refs/heads/main', oid: head },
      ]);
    } finally {
      await source.close();
      await target.close();
    }
  });
});
