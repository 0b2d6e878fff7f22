/**
 * A push must not ride a kept-alive connection to the backend (docs/architecture.md
 * "A push (receive-pack)", issue 15 item 4): a server closing an idle kept-alive
 * connection just as githa reuses it for the POST would look like a push that
 * reached the backend and was interrupted, and freeze the repository.
 *
 * A relay (test/support/keepalive-relay.ts) between githa and the backend's web
 * server loses that race every time: a connection that already carried the
 * push's advertisement is reset the moment a receive-pack POST starts on it.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { startKeepAliveRelay } from '../support/keepalive-relay.js';
import { cliHash, repoKey } from '../support/state.js';

describe('a push and a kept-alive backend connection', () => {
  const cluster = useCluster({ backends: 1 });

  it('goes on a fresh connection: a kept-alive one the backend closes as the POST arrives freezes nothing', async () => {
    const repo = 'keepalive/app';
    const backend = cluster().backends[0]!;
    await cluster().createRepository(repo);
    const relay = await startKeepAliveRelay(backend.httpUrl, /^POST [^\r\n]*git-receive-pack/);
    const githa = await startGitha(cluster(), { singleCopy: true, endpoints: ['http'], backends: { [backend.id]: { http: relay.httpUrl } } });
    const git = GitClient.forCluster(cluster());

    const work = await git.init('keepalive');
    await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    // The advertisement (GET info/refs) and the POST follow each other at
    // once: githa's agent still holds the GET's connection when the POST comes.
    const first = await git.push(work, githa.url(repo), ['main'], [], { allowFailure: true });
    expect(first.stderr).not.toMatch(/interrupted|frozen/);
    expect(first.code, first.stderr).toBe(0);

    await git.commit(work, { 'a.txt': 'two\n' }, 'two');
    const second = await git.push(work, githa.url(repo), ['main'], [], { allowFailure: true });
    expect(second.code, second.stderr).toBe(0);

    expect(await cliHash(cluster(), repoKey(repo, 'writing'))).toEqual({});
    expect(await cliHash(cluster(), repoKey(repo, 'suspect'))).toEqual({});
    expect(await cliHash(cluster(), repoKey(repo, 'versions'))).toMatchObject({ [backend.id]: expect.any(String) });
  });
});
