/**
 * Attacks on the SSH front end's budgets (docs/security.md#ssh, issue 19
 * items 2, 6 and 8), each against a real githa, real sshd backends and a real
 * OpenSSH client or ssh2 connections:
 * - channels opened and abandoned on one connection must not keep githa's
 *   backend channel slots (src/backends/channel-pool.ts); sessions per
 *   connection and requests per user are limited;
 * - idle unauthenticated connections from two addresses cannot keep others out;
 * - ssh-rsa (SHA-1) user signatures are refused, server-sig-algs is well formed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess, type StartGithaOptions } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

const REPO = 'budget/app';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The real OpenSSH client: no config file, these keys only, githa's host key checked strictly. */
function ssh(githa: GithaProcess, key: string, args: string[], extra: string[] = []): Promise<Run> {
  const base = ['-n', '-F', '/dev/null', '-i', key, '-p', String(githa.sshPort), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes'];
  const opts = ['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${githa.knownHostsPath}`, '-o', 'GlobalKnownHostsFile=/dev/null'];
  return new Promise((resolve) => {
    execFile('ssh', [...base, ...extra, ...opts, 'git@127.0.0.1', ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function sshConnection(githa: GithaProcess, keyPath: string): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  return new Promise((resolve, reject) => {
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port: githa.sshPort, username: 'git', privateKey: readFileSync(keyPath), readyTimeout: 20_000 });
  });
}

/** An exec channel opened (the open confirmed) or refused: its error, or the refusal githa wrote before closing it. */
type Opened = { kind: 'open'; channel: ssh2.ClientChannel } | { kind: 'open-failed'; message: string } | { kind: 'refused'; stderr: string };

function openExec(client: ssh2.Client, command: string): Promise<Opened> {
  return new Promise((resolve) => {
    client.exec(command, (err, channel) => {
      if (err) return resolve({ kind: 'open-failed', message: err.message });
      let stderr = '';
      let data = false;
      channel.stderr.on('data', (d: Buffer) => {
        stderr += d.toString('utf8');
        // githa's refusals come before any protocol byte.
        if (!data && stderr.includes('\n')) resolve({ kind: 'refused', stderr });
      });
      channel.once('data', () => {
        data = true;
        resolve({ kind: 'open', channel });
      });
      channel.on('error', () => {});
    });
  });
}

/** Busy channels on githa's pooled SSH connections, all backends together (githa_backend_ssh_channels). */
async function busyBackendChannels(githa: GithaProcess): Promise<number> {
  const text = await (await fetch(`${githa.adminUrl}/metrics`)).text();
  const lines = text.split('\n').filter((l) => l.startsWith('githa_backend_ssh_channels{'));
  if (lines.length === 0) throw new Error('no githa_backend_ssh_channels metric');
  return lines.map((l) => Number(l.split(' ').at(-1))).reduce((a, b) => a + b, 0);
}

async function metric(githa: GithaProcess, prefix: string): Promise<number> {
  const text = await (await fetch(`${githa.adminUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => Number(l.split(' ').at(-1)))
    .reduce((a, b) => a + b, 0);
}

/** An idle TCP connection from `from` (127.0.0.2, …: Linux routes all of 127/8 over lo); `closed` resolves when the server closes it. */
function idleConnection(port: number, from: string): { socket: Socket; closed: Promise<void> } {
  const socket = connect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => {});
  socket.resume();
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
}

/**
 * An ssh2 client that signs with `ssh-rsa` (SHA-1) whatever the server's
 * server-sig-algs says, as an attacker's client may: ssh2 picks SHA-1 when it
 * saw no server-sig-algs, so its EXT_INFO handler is emptied. Resolves true
 * when githa let it in.
 */
function sha1RsaLogin(githa: GithaProcess, keyPath: string): Promise<boolean> {
  const client = new ssh2.Client();
  return new Promise((resolve) => {
    client.once('ready', () => {
      client.end();
      resolve(true);
    });
    client.once('error', () => resolve(false));
    client.connect({ host: '127.0.0.1', port: githa.sshPort, username: 'git', privateKey: readFileSync(keyPath), readyTimeout: 20_000 });
    const handlers = (client as unknown as { _protocol: { _handlers: Record<string, unknown> } })._protocol._handlers;
    expect(handlers.EXT_INFO).toBeTypeOf('function');
    handlers.EXT_INFO = () => {};
  });
}

describe('SSH budgets', () => {
  const cluster = useCluster({ backends: 2, repositories: [REPO] });
  const BASE: StartGithaOptions = { ssh: true, endpoints: ['ssh'], singleCopy: true, config: { verify: { intervalMs: 0 } } };

  function sshConfig(extra: Record<string, unknown>, authorizedKeys?: string): Record<string, unknown> {
    const c = cluster();
    const path = join(c.dir, `keys-${Math.random().toString(16).slice(2)}`);
    writeFileSync(path, authorizedKeys ?? `environment="GITHA_USER=tester" ${c.ssh.clientPublicKey.trim()}\n`);
    return { hostKeys: [join(c.dir, 'githa_host_ed25519_key')], authorizedKeys: path, backendKey: c.ssh.clientKeyPath, backendKnownHosts: c.ssh.knownHostsPath, ...extra };
  }

  let pushed = false;
  async function githaWith(extra: Record<string, unknown>, authorizedKeys?: string): Promise<GithaProcess> {
    if (!pushed) {
      // The first githa start also creates the host key sshConfig names.
      const helper = await startGitha(cluster(), { endpoints: ['http'], ssh: true });
      const git = GitClient.forCluster(cluster());
      const work = await git.init();
      await git.commit(work, { 'README.md': 'hello\n' }, 'first');
      await git.push(work, helper.url(REPO), ['main']);
      await helper.stop();
      pushed = true;
    }
    return startGitha(cluster(), { ...BASE, config: { ...BASE.config, ssh: sshConfig(extra, authorizedKeys) } });
  }

  async function cloneWorks(githa: GithaProcess): Promise<void> {
    const git = GitClient.forCluster(cluster(), { knownHostsPath: githa.knownHostsPath });
    const started = Date.now();
    const clone = await git.clone(githa.sshUrl(REPO));
    expect(readFileSync(join(clone, 'README.md'), 'utf8')).toBe('hello\n');
    // Far below the backend timeout (30 s) that a clone waiting for a leaked channel slot would take.
    expect(Date.now() - started).toBeLessThan(15_000);
  }

  it('abandoned exec channels free their backend channel slots; sessions per connection and requests per user are limited', async () => {
    const githa = await githaWith({ maxSessions: 10, maxRequestsPerUser: 25 });
    const key = cluster().ssh.clientKeyPath;
    const command = `git-upload-pack '${REPO}.git'`;
    for (let round = 0; round < 2; round++) {
      const conns = [await sshConnection(githa, key), await sshConnection(githa, key), await sshConnection(githa, key)];
      const opened: Opened[] = [];
      for (const conn of conns) {
        // One over the per-connection limit: refused at the channel open, with githa's reason.
        opened.push(...(await Promise.all(Array.from({ length: 11 }, () => openExec(conn, command)))));
      }
      const failed = opened.filter((o) => o.kind === 'open-failed');
      expect(failed).toHaveLength(3);
      for (const f of failed) expect(f.kind === 'open-failed' && f.message).toMatch(/githa: too many sessions on this connection \(at most 10\)/);
      // 30 channels, 25 requests of one user at once: the rest are refused with a message.
      const refused = opened.filter((o) => o.kind === 'refused');
      expect(refused).toHaveLength(5);
      for (const r of refused) expect(r.kind === 'refused' && r.stderr).toMatch(/githa: too many requests of user tester at once \(at most 25\)/);
      expect(opened.filter((o) => o.kind === 'open')).toHaveLength(25);
      // No wants: the client goes away while githa holds (or relays) the advertisements.
      for (const conn of conns) conn.destroy();
    }
    await waitFor('every backend channel slot free', async () => (await busyBackendChannels(githa)) === 0, 20_000, {
      detail: () => githa.logs().slice(-3000),
    });
    expect(await metric(githa, 'githa_ssh_refused_total{reason="sessions"}')).toBe(6);
    expect(await metric(githa, 'githa_ssh_refused_total{reason="user-requests"}')).toBe(10);
    await cloneWorks(githa);
  });

  it('idle unauthenticated connections from two addresses cannot keep a legitimate client out', async () => {
    const githa = await githaWith({ maxStartups: '8:30:30', maxStartupsPerClient: 3 });
    const port = githa.sshPort!;
    // 10 idle handshakes from each of two addresses: 3 each are kept (below start = 8), the rest closed at once.
    const idle = ['127.0.0.2', '127.0.0.3'].flatMap((from) => Array.from({ length: 10 }, () => ({ from, ...idleConnection(port, from) })));
    let closed = 0;
    for (const c of idle) void c.closed.then(() => closed++);
    await waitFor('14 idle connections dropped', async () => (await metric(githa, 'githa_ssh_refused_total{reason="client-startups"}')) === 14 && closed === 14);
    expect(githa.logs()).toContain('too many unauthenticated connections from this address (3)');
    // The 6 kept still count: a legitimate client (another address) is not dropped by them.
    await cloneWorks(githa);
    for (const c of idle) c.socket.destroy();
  });

  it('refuses ssh-rsa (SHA-1) user signatures and advertises a well-formed server-sig-algs; rsa-sha2 logs in', async () => {
    const c = cluster();
    const rsaKey = join(c.dir, 'budget_rsa');
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', 'rsa-user', '-f', rsaKey]);
    const keys = `environment="GITHA_USER=tester" ${c.ssh.clientPublicKey.trim()}\nenvironment="GITHA_USER=rsa" ${readFileSync(`${rsaKey}.pub`, 'utf8').trim()}\n`;
    const githa = await githaWith({}, keys);
    const sigAlgs = 'ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256';
    // OpenSSH's defaults: rsa-sha2-512 (from the list), logged in.
    const ok = await ssh(githa, rsaKey, ['help'], ['-vvv']);
    expect(ok.stderr).toContain(`server-sig-algs=<${sigAlgs}>`);
    expect(ok.stderr).toMatch(/Authenticated to 127\.0\.0\.1/);
    expect(ok.stderr).toMatch(/Server accepts key: .*RSA SHA256:\S+ explicit/);
    // The attack: only ssh-rsa offered. OpenSSH finds no mutual algorithm in the list and is refused.
    const sha1 = await ssh(githa, rsaKey, ['help'], ['-vvv', '-o', 'PubkeyAcceptedAlgorithms=ssh-rsa']);
    expect(sha1.code).toBe(255);
    expect(sha1.stderr).toMatch(/Permission denied \(publickey\)/);
    expect(sha1.stderr).not.toMatch(/Authenticated to/);
    // A client that signs with ssh-rsa anyway is refused by githa itself.
    expect(await sha1RsaLogin(githa, rsaKey)).toBe(false);
    await waitFor('the refusal logged', () => githa.logs().includes('ssh-rsa (SHA-1) signature algorithm refused'));
    expect(await metric(githa, 'githa_ssh_refused_total{reason="ssh-rsa"}')).toBeGreaterThan(0);
    // ssh.allowSshRsaSignatures: the operator's way back for old clients.
    const lenient = await githaWith({ allowSshRsaSignatures: true }, keys);
    expect(await sha1RsaLogin(lenient, rsaKey)).toBe(true);
    const listed = await ssh(lenient, rsaKey, ['help'], ['-vvv']);
    expect(listed.stderr).toContain(`server-sig-algs=<${sigAlgs},ssh-rsa>`);
  });
});
