/**
 * Idle git:// connections (issue 19, item 3): many clients send a request
 * line and then nothing. githa admits gitDaemon.maxConnectionsPerClient of
 * them per address, refuses the rest at once, closes the admitted ones after
 * gitDaemon.idleTimeoutMs without a byte either way, never marks a backend
 * down for it, and a legitimate git:// clone works meanwhile.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { pkt } from '../support/hostile-corpus.js';
import { waitFor } from '../support/wait.js';

interface Idle {
  from: string;
  socket: Socket;
  data: Buffer;
  closed: boolean;
}

/** Connects from `localAddress`, sends one upload-pack request line, then nothing. */
async function idleRequest(port: number, repo: string, localAddress: string): Promise<Idle> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  const idle: Idle = { from: localAddress, socket, data: Buffer.alloc(0), closed: false };
  socket.on('error', () => {});
  socket.on('data', (c: Buffer) => (idle.data = Buffer.concat([idle.data, c])));
  socket.once('close', () => (idle.closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(pkt(Buffer.from(`git-upload-pack /${repo}.git\0host=127.0.0.1\0`, 'utf8')));
  return idle;
}

describe('idle git:// connections', () => {
  const cluster = useCluster({ backends: 2 });

  it('are limited per address, closed after the idle timeout, and never mark a backend down', async () => {
    const repo = 'idle/app';
    const perClient = 8;
    const githa = await startGitha(cluster(), {
      git: true,
      config: { verify: { intervalMs: 0 }, gitDaemon: { allowPush: false, maxConnectionsPerClient: perClient, idleTimeoutMs: 6_000 } },
    });
    await cluster().createRepository(repo);
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'idle\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    const daemonLogBefore = cluster().backends.map((b) => readFileSync(b.logs.git, 'utf8').length);

    // 3 addresses × 24 request lines: more than the two backends' git daemons
    // (32 children each) could serve at once, were they all admitted.
    const addresses = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
    const attack: Idle[] = [];
    try {
      for (const from of addresses) {
        for (let i = 0; i < 24; i++) attack.push(await idleRequest(githa.gitPort!, repo, from));
      }
      // Over the per-address limit: refused at once with an ERR packet, the connection closed.
      await waitFor('the connections over the per-address limit refused', () => attack.filter((a) => a.closed).length >= addresses.length * (24 - perClient), 20_000, {
        intervalMs: 100,
      });
      const refused = attack.filter((a) => a.closed);
      expect(refused).toHaveLength(addresses.length * (24 - perClient));
      for (const r of refused) expect(r.data.toString('latin1')).toContain(`ERR githa: too many connections from your address (at most ${perClient})`);
      // The admitted ones got the backend's advertisement and now sit idle.
      const admitted = attack.filter((a) => !a.closed);
      expect(admitted).toHaveLength(addresses.length * perClient);
      await waitFor('every admitted connection advertised', () => admitted.every((a) => a.data.includes('refs/heads/main')), 30_000, { intervalMs: 100 });

      // Meanwhile a legitimate git:// clone works.
      const clone = await git.clone(githa.gitUrl(repo));
      expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });

      // The idle ones are closed after gitDaemon.idleTimeoutMs.
      await waitFor('idle connections closed', () => admitted.every((a) => a.closed), 40_000, { intervalMs: 200 });
    } finally {
      for (const a of attack) a.socket.destroy();
    }
    const lines = githa.logLines();
    expect(lines.filter((l) => l.msg === 'git:// connection idle, closed')).toHaveLength(addresses.length * perClient);
    expect(lines.filter((l) => l.msg === 'backend down')).toEqual([]);
    expect(await cluster().redis.cli('HGET', 'githa:backend:b1', 'health')).not.toBe('down');
    expect(await cluster().redis.cli('HGET', 'githa:backend:b2', 'health')).not.toBe('down');
    cluster().backends.forEach((b, i) => expect(readFileSync(b.logs.git, 'utf8').slice(daemonLogBefore[i])).not.toContain('Too many children'));
    const after = await git.clone(githa.gitUrl(repo));
    expect(await git.forEachRef(after, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });
  });

  it('reads from the other copy when a backend is too busy to accept, without marking it down for everyone', async () => {
    const repo = 'idle/busy';
    // One probe round at the start, then none during the test: what marks a backend
    // down here can only be the request (docs/architecture.md "Health").
    const githa = await startGitha(cluster(), {
      git: true,
      config: { verify: { intervalMs: 0 }, health: { intervalMs: 600_000 }, http: { backendTimeoutMs: 3_000 } },
    });
    await cluster().createRepository(repo);
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'busy\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    await git.clone(githa.gitUrl(repo));
    const first = await waitFor('the first git:// read logged', () =>
      githa.logLines().find((l) => l.msg === 'request' && l.repo === `${repo}.git` && typeof l.backend === 'string'),
    );
    const busy = cluster().backend(String(first.backend));
    // A git daemon past --max-connections stops accepting, and its listen queue fills:
    // paused, and its queue filled, it looks the same to a new connection (a connect that
    // never completes). The connections beyond the queue's room are never accepted.
    busy.pause();
    const filler: Socket[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        const s = connect({ port: busy.ports.git, host: '127.0.0.1' });
        s.on('error', () => {});
        filler.push(s);
      }
      // Reads are spread over the leaders: a few clones, until one met the busy backend first.
      const skipped = (): boolean => githa.logLines().some((l) => l.msg === 'backend busy or slow; trying the next copy' && l.backend === busy.id);
      for (let i = 0; i < 6 && !skipped(); i++) {
        const clone = await git.clone(githa.gitUrl(repo));
        expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });
      }
      await waitFor('the busy backend skipped', skipped, 5_000, {
        detail: () => githa.logs().split('\n').filter((l) => l.includes(repo)).slice(-8).join('\n'),
      });
    } finally {
      for (const s of filler) s.destroy();
      busy.resume();
    }
    expect(githa.logLines().filter((l) => l.msg === 'backend down')).toEqual([]);
    expect(await cluster().redis.cli('HGET', `githa:backend:${busy.id}`, 'health')).not.toBe('down');
  });
});
