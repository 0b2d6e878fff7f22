/**
 * BackendClient.hasObjects against real backends (src/protocol/acknowledgments.ts):
 * a protocol v2 fetch without `done` tells which objects a repository holds,
 * over HTTP (git http-backend under lighttpd), SSH (OpenSSH with AcceptEnv
 * GIT_PROTOCOL) and git:// (git daemon), and the connection is usable again
 * afterwards. A backend that only speaks v0 answers "none".
 */
import { describe, expect, it } from 'vitest';
import { GitDaemonBackendClient } from '../../src/backends/git-daemon.js';
import { HttpBackendClient } from '../../src/backends/http.js';
import { SshBackendClient } from '../../src/backends/ssh.js';
import type { BackendClient } from '../../src/backends/types.js';
import { useCluster, type DevBackend } from '../support/cluster.js';
import { GitClient } from '../support/git.js';

const cluster = useCluster({ backends: 1 });
const TIMEOUT = 15_000;

function clients(b: DevBackend): Record<string, BackendClient> {
  const c = cluster();
  return {
    http: new HttpBackendClient({ id: b.id, baseUrl: b.httpUrl, timeoutMs: TIMEOUT }),
    ssh: new SshBackendClient({ id: b.id, url: b.sshUrl, privateKey: c.ssh.clientKeyPath, knownHosts: c.ssh.knownHostsPath, timeoutMs: TIMEOUT }),
    git: new GitDaemonBackendClient({ id: b.id, url: b.gitUrl, timeoutMs: TIMEOUT }),
  };
}

describe('hasObjects', () => {
  it('names the objects a repository holds, over HTTP, SSH and git://', async () => {
    const c = cluster();
    const b = c.backend('b1');
    const repo = 'has/objects';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init('work');
    const first = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    const second = await git.commit(work, { 'b.txt': 'b\n' }, 'second');
    await git.push(work, b.url('http', repo), ['main']);
    // Commits the backend never saw.
    const other = await git.init('other');
    const foreign = await git.commit(other, { 'x.txt': 'x\n' }, 'foreign');
    const absent = 'f'.repeat(40);

    for (const [name, client] of Object.entries(clients(b))) {
      try {
        const has = await client.hasObjects(`${repo}.git`, second, [first, foreign, second, absent]);
        expect([...has].sort(), name).toEqual([first, second].sort());
        expect(await client.hasObjects(`${repo}.git`, second, [foreign]), name).toEqual(new Set());
        // The request was closed before any pack; the client works on.
        const refs = await client.listRefs(`${repo}.git`);
        expect(refs?.find((r) => r.name === 'refs/heads/main')?.oid, name).toBe(second);
      } finally {
        await client.close();
      }
    }

    // A backend that ignores Git-Protocol (v0 only) cannot be asked: "none", so callers keep rather than lose.
    const v0 = new HttpBackendClient({ id: b.id, baseUrl: b.httpUrlAt('v0'), timeoutMs: TIMEOUT });
    try {
      expect(await v0.hasObjects(`${repo}.git`, second, [first])).toEqual(new Set());
    } finally {
      await v0.close();
    }
  });
});
