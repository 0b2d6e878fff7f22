/**
 * Connections over a limit, and git:// extra parameters (issue 19, item 9):
 * - connections refused over the per-address limit are closed at once (or
 *   after a grace of a second or two when the client says nothing), on all
 *   three listeners, so they cannot pile up holding githa's file descriptors
 *   (counted in /proc/<pid>/fd of the githa process);
 * - a git:// request whose extra parameters are not `key[=value]` items
 *   (`\0\0--upload-pack=id`) is refused before it reaches a backend, as SSH's
 *   GIT_PROTOCOL is.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { pkt } from '../support/hostile-corpus.js';
import { exchange, untouched } from '../support/untouched.js';
import { waitFor } from '../support/wait.js';

const OVER = 40;
const ATTACKER = '127.0.0.2';

interface Held {
  socket: Socket;
  data: () => string;
  closed: boolean;
}

/** A TCP connection from ATTACKER that sends `first` (or nothing) and then holds on. */
async function open(port: number, first?: Buffer): Promise<Held> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: ATTACKER });
  const chunks: Buffer[] = [];
  const held: Held = { socket, data: () => Buffer.concat(chunks).toString('latin1'), closed: false };
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  socket.once('close', () => (held.closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (first) socket.write(first);
  return held;
}

function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function sshConnection(githa: GithaProcess, keyPath: string): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  return new Promise((resolve, reject) => {
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', localAddress: ATTACKER, port: githa.sshPort, username: 'git', privateKey: readFileSync(keyPath), readyTimeout: 20_000 });
  });
}

describe('connections refused over a limit, and git:// extra parameters', () => {
  const cluster = useCluster({ backends: 1 });

  it('closes refused connections at once on HTTP, SSH and git://, so they hold no file descriptors', async () => {
    const repo = 'refused/app';
    const c = cluster();
    const authorizedKeys = join(c.dir, 'refused-authorized-keys');
    writeFileSync(authorizedKeys, `environment="GITHA_USER=tester" ${c.ssh.clientPublicKey.trim()}\n`);
    const githa = await startGitha(cluster(), {
      git: true,
      ssh: true,
      singleCopy: true,
      config: {
        verify: { intervalMs: 0 },
        http: { maxConnectionsPerClient: 2 },
        // startGitha's `config` replaces the whole ssh object: its key files as startGitha makes them.
        ssh: {
          hostKeys: [join(c.dir, 'githa_host_ed25519_key')],
          authorizedKeys,
          backendKey: c.ssh.clientKeyPath,
          backendKnownHosts: c.ssh.knownHostsPath,
          maxConnectionsPerClient: 2,
        },
        gitDaemon: { allowPush: false, maxConnectionsPerClient: 2 },
      },
    });
    await cluster().createRepository(repo);
    const httpPort = Number(new URL(githa.httpUrl).port);
    const request = pkt(Buffer.from(`git-upload-pack /${repo}.git\0host=127.0.0.1\0`, 'utf8'));
    const held: Held[] = [];
    const clients: ssh2.Client[] = [];
    try {
      // Each listener: the attacker holds its 2 connections (git:// ones past their request
      // line, SSH ones authenticated), then opens OVER more that say nothing.
      const listeners: Array<{ name: string; port: number; hold: () => Promise<void>; refusal?: RegExp }> = [
        { name: 'HTTP', port: httpPort, hold: async () => void held.push(await open(httpPort)) },
        {
          name: 'git://',
          port: githa.gitPort!,
          hold: async () => void held.push(await open(githa.gitPort!, request)),
          refusal: /ERR githa: too many connections from your address \(at most 2\)/,
        },
        { name: 'SSH', port: githa.sshPort!, hold: async () => void clients.push(await sshConnection(githa, cluster().ssh.clientKeyPath)) },
      ];
      for (const l of listeners) {
        for (let i = 0; i < 2; i++) await l.hold();
        const baseline = fds(githa.pid);
        const refused: Held[] = [];
        for (let i = 0; i < OVER; i++) refused.push(await open(l.port));
        held.push(...refused);
        // githa's refusal grace is a second (HTTP, git://) or two (SSH); its request
        // and login timeouts (10 s, 60 s) held them before.
        // (A few descriptors of slack: githa's probes and backend connections come and go.)
        await waitFor(`${l.name}: the ${OVER} refused connections closed`, () => refused.every((r) => r.closed) && fds(githa.pid) <= baseline + 4, 6_000, {
          intervalMs: 100,
          detail: () => `${refused.filter((r) => !r.closed).length} still open; githa holds ${fds(githa.pid)} fds (${baseline} before)`,
        });
        if (l.refusal) for (const r of refused) expect(r.data(), l.name).toMatch(l.refusal);
      }
      expect(githa.proc.exitCode).toBeNull();
    } finally {
      for (const h of held) h.socket.destroy();
      for (const c of clients) c.end();
    }
  });

  it('refuses git:// extra parameters that are not key[=value] items before any backend sees them', async () => {
    const repo = 'refused/params';
    const githa = await startGitha(cluster(), { git: true, singleCopy: true, config: { verify: { intervalMs: 0 } } });
    await cluster().createRepository(repo);
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'params\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    await untouched(cluster(), githa, async () => {
      for (const extra of ['--upload-pack=id', 'version=2\0--upload-pack=touch /tmp/x', 'version=2\0-c', 'version=2 x']) {
        const line = pkt(Buffer.from(`git-upload-pack /${repo}.git\0host=127.0.0.1\0\0${extra}\0`, 'utf8'));
        const answer = await exchange(githa.gitPort!, line, 20_000);
        expect(answer.closed, JSON.stringify(extra)).toBe(true);
        expect(answer.data.toString('latin1'), JSON.stringify(extra)).toMatch(
          /^[0-9a-f]{4}ERR githa: invalid extra parameter in git:\/\/ request \(expected key or key=value, such as version=2\)\n$/,
        );
      }
    });
    // git's own extra parameter (version=2) still goes through.
    const clone = await git.clone(githa.gitUrl(repo));
    expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });
  });
});
