/**
 * The HAProxy TLS recipes (deploy/haproxy/haproxy-tls-*.cfg, docs/deploy.md
 * "TLS"): `haproxy -c` accepts each (with a certificate the test makes), and
 * a real haproxy running each recipe — addresses and the crt path rewritten
 * to the test's, nothing else — carries a real git clone and push to githa:
 * terminating TLS in front of listen.http, and passing it through to
 * listen.https, where a client certificate still reaches githa. Both send
 * PROXY v2 (send-proxy-v2) from the address BALANCER, the one githa trusts
 * (listen.proxyProtocolFrom, as test/integration/proxy-protocol.test.ts
 * does): githa's log lines name the client (127.0.0.1), never HAProxy.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { pickFreePort } from '../../src/demo/process.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { TestCa, type IssuedCert } from '../support/tls.js';
import { StopWaiting, waitFor } from '../support/wait.js';

const run = promisify(execFile);
const HAPROXY = resolve(import.meta.dirname, '../../deploy/haproxy');
const RECIPES = ['haproxy-tls-terminate.cfg', 'haproxy-tls-passthrough.cfg'] as const;
const CRT = '/etc/haproxy/certs/git.example.com.pem';
/** HAProxy's address towards githa (`source`), the one githa trusts to send a PROXY header; the client is 127.0.0.1. */
const BALANCER = '127.0.0.5';

/** Replaces `from` in `text`, failing when the recipe no longer has it (the rewrite must not silently miss). */
function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const next = text.replace(from, to);
  if (next === text) throw new Error(`the recipe no longer contains ${String(from)}`);
  return next;
}

/**
 * A recipe as the test runs it: in the foreground as this user (no daemon,
 * user, group or syslog, fewer connections), bound to 127.0.0.1 ports, one server (githa) with
 * its admin port for the /readyz check, the test's certificate. The server line keeps the
 * recipe's options (send-proxy-v2) and connects from BALANCER.
 */
function forTest(text: string, t: { https: number; http?: number; crt?: string; server: number; admin: number }): string {
  let cfg = text.replace(/^\s*(log \/dev\/log.*|user haproxy|group haproxy|daemon)\s*$/gm, '');
  // The test machine's file descriptor limit is below what maxconn 20000 needs.
  cfg = replaceOnce(cfg, /maxconn 20000/, 'maxconn 1000');
  cfg = replaceOnce(cfg, /^(\s*)bind :443\b/m, `$1bind 127.0.0.1:${t.https}`);
  if (t.http) cfg = replaceOnce(cfg, /^(\s*)bind :80$/m, `$1bind 127.0.0.1:${t.http}`);
  if (t.crt) cfg = replaceOnce(cfg, CRT, t.crt);
  cfg = replaceOnce(cfg, /check port 9090/, `check port ${t.admin}`);
  cfg = replaceOnce(cfg, /^(\s*)server githa-1 10\.0\.0\.31:\d+(.*)$/m, `$1server githa-1 127.0.0.1:${t.server} source ${BALANCER}$2`);
  return replaceOnce(cfg, /^\s*server githa-[23] .*\n/gm, '');
}

/** haproxy in the foreground, stopped when the test ends; `check` stops a wait once it has exited. */
function startHaproxy(dir: string, cfg: string): { check(): void } {
  const file = join(dir, `haproxy-${Date.now()}.cfg`);
  writeFileSync(file, cfg);
  const proc = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  onTestFinished(() => {
    proc.kill('SIGKILL');
  });
  return {
    check() {
      if (proc.exitCode !== null) throw new StopWaiting(`haproxy exited with ${proc.exitCode}:\n${out}`);
    },
  };
}

/** Status of one GET over https, trusting only `ca`. */
function httpsStatus(url: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, servername: 'localhost', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The addresses githa's request log lines name for these repositories' git requests (at least one line each). */
function requestAddresses(githa: GithaProcess, repos: string[]): Set<unknown> {
  const lines = githa.logLines().filter((l) => (l.msg === 'request' || l.msg === 'request failed') && repos.includes(String(l.repo)));
  expect(new Set(lines.map((l) => l.repo))).toEqual(new Set(repos));
  return new Set(lines.map((l) => l.ip));
}

/** The certificate a TLS server at `port` presents. */
function peerCertificate(port: number, ca: Buffer): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('HAProxy TLS recipes', () => {
  it.each(RECIPES)('haproxy -c accepts %s', async (recipe) => {
    const dir = mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'githa-haproxy-tls-'));
    const ca = await TestCa.create(dir);
    const server = await ca.issue('haproxy', { cn: 'localhost', server: true });
    const text = readFileSync(join(HAPROXY, recipe), 'utf8');
    const cfg = join(dir, recipe);
    writeFileSync(cfg, recipe.includes('terminate') ? replaceOnce(text, CRT, server.bundle) : text);
    const { stdout, stderr } = await run('haproxy', ['-c', '-f', cfg]);
    expect(`${stdout}${stderr}`).toContain('Configuration file is valid');
    expect(text).toMatch(/http-check send meth GET uri \/readyz/);
  });

  describe('with a real haproxy and git', () => {
    const cluster = useCluster({ backends: 2, repositories: ['tls/app', 'tls/private'] });
    const QUIET = { verify: { intervalMs: 0 }, replication: { background: false } };

    async function certificates(): Promise<{ dir: string; ca: TestCa; server: IssuedCert; caPem: Buffer; git: GitClient; caArgs: string[] }> {
      const dir = mkdtempSync(join(cluster().dir, 'haproxy-tls-'));
      const ca = await TestCa.create(dir);
      const server = await ca.issue('server', { cn: 'localhost', server: true });
      return { dir, ca, server, caPem: readFileSync(ca.cert), git: GitClient.forCluster(cluster()), caArgs: ['-c', `http.sslCAInfo=${ca.cert}`] };
    }

    it('terminating: git clones and pushes over https through HAProxy to githa\'s plain HTTP; port 80 redirects', async () => {
      const { dir, server, caPem, git, caArgs } = await certificates();
      const githa = await startGitha(cluster(), { config: { ...QUIET, listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0', proxyProtocolFrom: [`${BALANCER}/32`] } } });
      const [https, http] = [await pickFreePort(), await pickFreePort()];
      const admin = Number(new URL(githa.adminUrl).port);
      const httpPort = Number(new URL(githa.httpUrl).port);
      const haproxy = startHaproxy(dir, forTest(readFileSync(join(HAPROXY, 'haproxy-tls-terminate.cfg'), 'utf8'), { https, http, crt: server.bundle, server: httpPort, admin }));
      const base = `https://127.0.0.1:${https}`;
      await waitFor('haproxy to relay a listing', async () => haproxy.check() ?? (await httpsStatus(`${base}/tls/app.git/info/refs?service=git-upload-pack`, caPem)) === 200, 15_000);
      const work = await git.init();
      const sha = await git.commit(work, { 'README.md': 'through haproxy\n' }, 'first');
      await git.run([...caArgs, 'push', `${base}/tls/app.git`, 'main'], { cwd: work });
      const clone = await git.clone(`${base}/tls/app.git`, caArgs);
      expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });
      const plain = await fetch(`http://127.0.0.1:${http}/tls/app.git/info/refs?service=git-upload-pack`, { redirect: 'manual' });
      expect(plain.status).toBe(301);
      expect(plain.headers.get('location')).toBe(`https://127.0.0.1:${http}/tls/app.git/info/refs?service=git-upload-pack`);
      // githa saw the client's address in HAProxy's PROXY header, not HAProxy's own.
      expect(requestAddresses(githa, ['tls/app.git'])).toEqual(new Set(['127.0.0.1']));
      expect(githa.logs()).not.toContain(`"ip":"${BALANCER}"`);
      expect(githa.logs()).not.toContain('PROXY protocol header refused');
    });

    it('passthrough: githa\'s own certificate reaches git, and so does a client certificate', async () => {
      const { dir, ca, server, caPem, git, caArgs } = await certificates();
      const alice = await ca.issue('alice', { cn: 'alice' });
      const access = { default: 'none', rules: [{ repos: 'tls/private', users: ['alice'], access: 'write' }, { repos: 'tls/app', access: 'read' }] };
      // startGitha's `config` replaces its `listen`: listen.https as its `https` option would set it, and the trusted balancer.
      const listen = { http: '127.0.0.1:0', admin: '127.0.0.1:0', https: '127.0.0.1:0', proxyProtocolFrom: [`${BALANCER}/32`] };
      const githa = await startGitha(cluster(), { https: { cert: server.cert, key: server.key, clientCa: ca.cert, clientCertificates: 'optional' }, config: { ...QUIET, access, listen } });
      const https = await pickFreePort();
      const admin = Number(new URL(githa.adminUrl).port);
      const haproxy = startHaproxy(dir, forTest(readFileSync(join(HAPROXY, 'haproxy-tls-passthrough.cfg'), 'utf8'), { https, server: githa.httpsPort!, admin }));
      const base = `https://127.0.0.1:${https}`;
      await waitFor('haproxy to relay a listing', async () => haproxy.check() ?? (await httpsStatus(`${base}/tls/app.git/info/refs?service=git-upload-pack`, caPem)) === 200, 15_000);
      // The handshake is githa's: its certificate, not one of HAProxy's.
      expect((await peerCertificate(https, caPem)).serialNumber).toBe(server.serial);
      await git.clone(`${base}/tls/app.git`, caArgs);
      const withCert = [...caArgs, '-c', `http.sslCert=${alice.cert}`, '-c', `http.sslKey=${alice.key}`];
      await git.clone(`${base}/tls/private.git`, withCert);
      const without = await git.run([...caArgs, 'clone', `${base}/tls/private.git`, await git.workdir('nobody')], { allowFailure: true });
      expect(without.code).not.toBe(0);
      expect(without.stderr).toMatch(/not found/i);
      // The PROXY header preceded githa's handshake: its log lines name the client, not HAProxy.
      expect(requestAddresses(githa, ['tls/app.git', 'tls/private.git'])).toEqual(new Set(['127.0.0.1']));
      expect(githa.logs()).not.toContain(`"ip":"${BALANCER}"`);
      expect(githa.logs()).not.toContain('PROXY protocol header refused');
      // alice's certificate identified her through the relay.
      expect(githa.logLines().some((l) => l.msg === 'request' && l.repo === 'tls/private.git' && l.user === 'alice' && l.ip === '127.0.0.1')).toBe(true);
    });
  });
});
