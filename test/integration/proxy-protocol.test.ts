/**
 * The PROXY protocol with HAProxy itself (issue 21 item 3): HAProxy on
 * 127.0.0.1 forwards to githa from the source address 127.0.0.5
 * (`source 127.0.0.5 send-proxy-v2`, git:// with `send-proxy`, v1), githa
 * trusts 127.0.0.5/32 only. Git clones and pushes through each transport;
 * githa's log lines and the push log show the client's address (127.0.0.1),
 * never HAProxy's (127.0.0.5). Limits (git:// connections, SSH startups, the
 * failed-login throttle) count the header's address, sent by hand from the
 * trusted address; a PROXY header from an untrusted address is bad input,
 * refused with a log line and no state change.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { generateKey, knownHostsLine } from '../../src/demo/ssh.js';
import { pickFreePort } from '../../src/demo/process.js';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { pkt } from '../support/hostile-corpus.js';
import { waitFor } from '../support/wait.js';

const BALANCER = '127.0.0.5';

interface Haproxy {
  http: number;
  ssh: number;
  git: number;
  log: () => string;
}

/** HAProxy in front of githa's three listeners, as deploy/haproxy/haproxy.cfg does it, on ephemeral ports. */
async function startHaproxy(cluster: DevCluster, githa: GithaProcess): Promise<Haproxy> {
  const [http, ssh, git] = [await pickFreePort(), await pickFreePort(), await pickFreePort()];
  const githaHttp = Number(new URL(githa.httpUrl).port);
  const cfg = join(cluster.dir, `haproxy-${process.pid}-${http}.cfg`);
  writeFileSync(
    cfg,
    [
      'global',
      '    maxconn 256',
      'defaults',
      '    timeout connect 5s',
      '    timeout client 60s',
      '    timeout server 60s',
      'frontend git_http',
      '    mode http',
      `    bind 127.0.0.1:${http}`,
      '    default_backend githa_http',
      'backend githa_http',
      '    mode http',
      `    server githa 127.0.0.1:${githaHttp} source ${BALANCER} send-proxy-v2`,
      'frontend git_ssh',
      '    mode tcp',
      `    bind 127.0.0.1:${ssh}`,
      '    default_backend githa_ssh',
      'backend githa_ssh',
      '    mode tcp',
      `    server githa 127.0.0.1:${githa.sshPort} source ${BALANCER} send-proxy-v2`,
      'frontend git_daemon',
      '    mode tcp',
      `    bind 127.0.0.1:${git}`,
      '    default_backend githa_git',
      'backend githa_git',
      '    mode tcp',
      `    server githa 127.0.0.1:${githa.gitPort} source ${BALANCER} send-proxy`,
      '',
    ].join('\n'),
  );
  const proc = spawn('/usr/sbin/haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const untrack = cluster.track(proc.pid!);
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  onTestFinished(() => {
    untrack();
    proc.kill('SIGKILL');
  });
  // Ready when every frontend accepts a connection.
  for (const port of [http, ssh, git]) {
    await waitFor(`haproxy listening on ${port}`, () => canConnect(port), 10_000, { intervalMs: 50 });
  }
  return { http, ssh, git, log: () => out };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

interface Raw {
  socket: Socket;
  data: () => string;
  closed: () => boolean;
}

/** A raw connection to githa from `from`, writing `bytes` at once. */
async function raw(port: number, from: string, bytes: Buffer): Promise<Raw> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  let data = '';
  let closed = false;
  socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
  socket.on('error', () => {});
  socket.once('close', () => (closed = true));
  await new Promise((resolve) => socket.once('connect', resolve));
  onTestFinished(() => void socket.destroy());
  socket.write(bytes);
  return { socket, data: () => data, closed: () => closed };
}

const requests = (githa: GithaProcess, msg: string): Array<Record<string, unknown>> => githa.logLines().filter((l) => l.msg === msg);

describe('PROXY protocol behind HAProxy', () => {
  const cluster = useCluster({ backends: 2 });

  it('logs and records the client address, not HAProxy’s, over HTTP (v2), SSH (v2) and git:// (v1)', async () => {
    const repo = 'pp/app';
    await cluster().createRepository(repo);
    const githa = await startGitha(cluster(), {
      ssh: true,
      git: { allowPush: true },
      config: { listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0', ssh: '127.0.0.1:0', git: '127.0.0.1:0', proxyProtocolFrom: [`${BALANCER}/32`] } },
    });
    const lb = await startHaproxy(cluster(), githa);
    const knownHosts = join(cluster().dir, `known-hosts-haproxy-${lb.ssh}`);
    writeFileSync(knownHosts, `${readFileSync(githa.knownHostsPath, 'utf8')}${knownHostsLine(lb.ssh, readFileSync(join(cluster().dir, 'githa_host_ed25519_key.pub'), 'utf8'))}\n`);
    const git = GitClient.forCluster(cluster(), { knownHostsPath: knownHosts });
    const work = await git.init();
    await git.commit(work, { 'README.md': 'one\n' }, 'one');

    await git.push(work, `http://127.0.0.1:${lb.http}/${repo}.git`, ['main']);
    await git.clone(`http://127.0.0.1:${lb.http}/${repo}.git`);
    await git.commit(work, { 'README.md': 'two\n' }, 'two');
    await git.push(work, `ssh://git@127.0.0.1:${lb.ssh}/${repo}.git`, ['main']);
    await git.clone(`ssh://git@127.0.0.1:${lb.ssh}/${repo}.git`);
    await git.commit(work, { 'README.md': 'three\n' }, 'three');
    await git.push(work, `git://127.0.0.1:${lb.git}/${repo}.git`, ['main']);
    await git.clone(`git://127.0.0.1:${lb.git}/${repo}.git`);

    // One request line per transport and service, each with the client's address.
    const lines = requests(githa, 'request');
    const seen = new Set(lines.map((l) => `${String(l.frontend)} ${String(l.service)} ${String(l.ip)}`));
    for (const frontend of ['http', 'ssh', 'git']) {
      for (const service of ['git-upload-pack', 'git-receive-pack']) expect(seen).toContain(`${frontend} ${service} 127.0.0.1`);
    }
    expect(new Set(lines.map((l) => l.ip))).toEqual(new Set(['127.0.0.1']));
    expect(githa.logs()).not.toContain(`"ip":"${BALANCER}"`);
    expect(githa.logs()).not.toContain('PROXY protocol header refused');

    // The push log: one entry per transport, each naming the client.
    const log = await cluster().redis.cli('XRANGE', `githa:repo:{${repo}.git}:log`, '-', '+');
    const pushes = log.split(/^\d+-\d+$/m).filter((e) => /^event\npush$/m.test(e));
    expect(pushes.map((e) => /^transport\n(\w+)$/m.exec(e)?.[1])).toEqual(['http', 'ssh', 'git']);
    for (const e of pushes) expect(e).toMatch(/^ip\n127\.0\.0\.1$/m);
  });

  it('counts git:// connections per client named in the header, and refuses a PROXY header from an untrusted address', async () => {
    const repo = 'pp/limits';
    await cluster().createRepository(repo);
    const githa = await startGitha(cluster(), {
      git: true,
      ssh: true,
      config: {
        listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0', ssh: '127.0.0.1:0', git: '127.0.0.1:0', proxyProtocolFrom: [`${BALANCER}/32`] },
        gitDaemon: { allowPush: false, maxConnectionsPerClient: 1 },
      },
    });
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    await git.commit(work, { 'README.md': 'x\n' }, 'x');
    await git.push(work, githa.url(repo), ['main']);
    const request = pkt(Buffer.from(`git-upload-pack /${repo}.git\0host=127.0.0.1\0`, 'utf8'));
    const from = (client: string, port: number): Buffer => Buffer.concat([Buffer.from(`PROXY TCP4 ${client} 127.0.0.1 ${port} 9418\r\n`), request]);

    // 198.51.100.1 holds its one connection (the advertisement, then idle).
    const first = await raw(githa.gitPort!, BALANCER, from('198.51.100.1', 40001));
    await waitFor('the first client advertised', () => first.data().includes('refs/heads/main'), 20_000, { intervalMs: 50 });
    // The same client again, through the same balancer: over its limit.
    const second = await raw(githa.gitPort!, BALANCER, from('198.51.100.1', 40002));
    await waitFor('the second connection refused', () => second.closed(), 20_000, { intervalMs: 50 });
    expect(second.data()).toContain('ERR githa: too many connections from your address (at most 1)');
    // Another client through the same balancer: its own limit.
    const other = await raw(githa.gitPort!, BALANCER, from('198.51.100.2', 40003));
    await waitFor('another client advertised', () => other.data().includes('refs/heads/main'), 20_000, { intervalMs: 50 });
    expect(requests(githa, 'git:// connection refused').map((l) => l.ip)).toEqual(['198.51.100.1']);

    // From 127.0.0.1 (not trusted) the same bytes are a malformed git:// request; nothing is parsed as PROXY.
    const versions = await cluster().redis.cli('HGETALL', `githa:repo:{${repo}.git}:versions`);
    const logLength = await cluster().redis.cli('XLEN', `githa:repo:{${repo}.git}:log`);
    const untrusted = await raw(githa.gitPort!, '127.0.0.1', from('198.51.100.3', 40004));
    await waitFor('the untrusted connection refused', () => untrusted.closed(), 20_000, { intervalMs: 50 });
    expect(untrusted.data()).toMatch(/ERR githa: /);
    const refused = requests(githa, 'git:// request refused');
    expect(refused.map((l) => l.ip)).toEqual(['127.0.0.1']);
    expect(githa.logs()).not.toContain('198.51.100.3');
    // The same over HTTP: a 400, logged as malformed, from the TCP peer's address.
    const http = await raw(Number(new URL(githa.httpUrl).port), '127.0.0.1', Buffer.from(`PROXY TCP4 198.51.100.3 127.0.0.1 40005 80\r\nGET /${repo}.git/info/refs?service=git-upload-pack HTTP/1.1\r\nhost: x\r\n\r\n`));
    await waitFor('the HTTP answer', () => http.closed(), 20_000, { intervalMs: 50 });
    expect(http.data()).toMatch(/^HTTP\/1\.1 400 /);
    expect(requests(githa, 'malformed HTTP request refused').map((l) => l.ip)).toEqual(['127.0.0.1']);
    // And over SSH: ssh2 refuses lines before a client's identification; the connection closes, logged.
    const ssh = await raw(githa.sshPort!, '127.0.0.1', Buffer.from('PROXY TCP4 198.51.100.3 127.0.0.1 40006 22\r\nSSH-2.0-OpenSSH_9.6\r\n'));
    await waitFor('the SSH connection closed', () => ssh.closed(), 20_000, { intervalMs: 50 });
    await waitFor('the SSH refusal logged', () => requests(githa, 'ssh connection closed before the SSH handshake').length === 1, 10_000, { intervalMs: 50 });
    expect(requests(githa, 'ssh connection closed before the SSH handshake')[0]).toMatchObject({ ip: '127.0.0.1' });
    expect(githa.logs()).not.toContain('198.51.100.3');
    expect(await cluster().redis.cli('HGETALL', `githa:repo:{${repo}.git}:versions`)).toBe(versions);
    expect(await cluster().redis.cli('XLEN', `githa:repo:{${repo}.git}:log`)).toBe(logLength);

    // A trusted peer that sends no valid header is closed with a log line.
    const bad = await raw(githa.gitPort!, BALANCER, request);
    await waitFor('the headerless connection closed', () => bad.closed(), 20_000, { intervalMs: 50 });
    expect(bad.data()).toBe('');
    await waitFor('the refusal logged', () => requests(githa, 'PROXY protocol header refused, connection closed').length === 1, 10_000, { intervalMs: 50 });
    expect(requests(githa, 'PROXY protocol header refused, connection closed')[0]).toMatchObject({ peer: BALANCER });
  });

  it('throttles failed HTTP logins per client named in the header', async () => {
    const usersFile = join(cluster().dir, `pp-users-${process.pid}`);
    writeFileSync(usersFile, `ci:$sha256$${createHash('sha256').update('right-token').digest('hex')}\n`);
    const githa = await startGitha(cluster(), {
      config: {
        listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0', proxyProtocolFrom: [`${BALANCER}/32`] },
        auth: { http: { mode: 'githa', usersFile, failureWindowMs: 60_000, maxFailuresPerAddress: 2, maxFailuresPerUser: 0 } },
        access: { default: 'none', rules: [{ repos: 'pp/**', users: ['*'], access: 'read' }] },
      },
    });
    const port = Number(new URL(githa.httpUrl).port);
    // Guesses for an unknown user, each a new password (a remembered wrong one is not checked again).
    let guess = 0;
    const login = async (client: string): Promise<string> => {
      const basic = Buffer.from(`mallory:guess${guess++}`).toString('base64');
      const c = await raw(port, BALANCER, Buffer.from(`PROXY TCP4 ${client} 127.0.0.1 40100 80\r\nGET /pp/app.git/info/refs?service=git-upload-pack HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Basic ${basic}\r\n\r\n`));
      await waitFor('the answer', () => c.closed(), 20_000, { intervalMs: 20 });
      return c.data().slice(9, 12);
    };
    expect([await login('198.51.100.1'), await login('198.51.100.1'), await login('198.51.100.1')]).toEqual(['401', '401', '429']);
    // Another client through the same balancer still gets its password checked.
    expect(await login('198.51.100.2')).toBe('401');
  });

  it('counts unauthenticated SSH connections per client named in the header (maxStartupsPerClient)', async () => {
    const hostKey = join(cluster().dir, 'githa_host_ed25519_key');
    if (!existsSync(hostKey)) await generateKey(hostKey, 'githa-host');
    const keys = join(cluster().dir, `pp-authorized-keys-${process.pid}`);
    writeFileSync(keys, `environment="GITHA_USER=tester" ${cluster().ssh.clientPublicKey.trim()}\n`);
    const githa = await startGitha(cluster(), {
      ssh: true,
      config: {
        listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0', ssh: '127.0.0.1:0', proxyProtocolFrom: [`${BALANCER}/32`] },
        // startGitha's `config` replaces the whole `ssh` object: its key files, as it makes them, and the limit.
        ssh: { hostKeys: [hostKey], authorizedKeys: keys, backendKey: cluster().ssh.clientKeyPath, backendKnownHosts: cluster().ssh.knownHostsPath, maxStartupsPerClient: 1 },
      },
    });
    const header = (client: string, port: number): Buffer => Buffer.from(`PROXY TCP4 ${client} 127.0.0.1 ${port} 22\r\n`);
    // githa's identification line is its first word on an admitted connection.
    const first = await raw(githa.sshPort!, BALANCER, header('198.51.100.1', 41001));
    await waitFor('the first client greeted', () => first.data().startsWith('SSH-2.0-githa'), 20_000, { intervalMs: 50 });
    const second = await raw(githa.sshPort!, BALANCER, header('198.51.100.1', 41002));
    await waitFor('the second connection dropped', () => second.closed(), 20_000, { intervalMs: 50 });
    expect(second.data()).toBe('');
    const other = await raw(githa.sshPort!, BALANCER, header('198.51.100.2', 41003));
    await waitFor('another client greeted', () => other.data().startsWith('SSH-2.0-githa'), 20_000, { intervalMs: 50 });
    expect(requests(githa, 'ssh connection dropped').map((l) => l.ip)).toEqual(['198.51.100.1']);
  });
});
