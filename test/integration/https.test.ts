/**
 * listen.https (docs/security.md "TLS") with the real git (libcurl), real
 * backends and a real redis-server, and a CA the test makes with openssl:
 *
 * - clone and push over https:// with the test CA; without it git refuses
 *   githa's certificate;
 * - TLS 1.1 and a CBC suite are refused in the handshake;
 * - a renewed certificate is served from the next connection on, without a
 *   restart; a pair that does not load leaves the old one in service;
 * - a client certificate verified against tls.clientCa identifies its user
 *   for the access rules; one from another CA identifies nobody;
 *   `require` refuses connections without one;
 * - behind a trusted balancer (listen.proxyProtocolFrom) a PROXY v2 header
 *   precedes the handshake and names the client; a trusted peer without one
 *   is closed, and an untrusted peer's header is just a failed handshake.
 */
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { V2_SIGNATURE } from '../../src/protocol/proxy-protocol.js';
import { TestCa } from '../support/tls.js';
import { waitFor } from '../support/wait.js';

/** The outcome of one TLS handshake with githa's HTTPS port. */
function handshake(port: number, options: ConnectionOptions): Promise<{ ok: true; cert: PeerCertificate; protocol: string | null } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ...options });
    socket.setTimeout(15_000, () => socket.destroy(new Error('handshake timed out')));
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      const protocol = socket.getProtocol();
      socket.end();
      resolve({ ok: true, cert, protocol });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, error: `${err.code ?? ''} ${err.message}` }));
  });
}

/** The address the tests' balancer connects from (githa trusts it); clients are 127.0.0.1. */
const BALANCER = '127.0.0.5';

/** A PROXY v2 header (HAProxy's doc/proxy-protocol.txt 2.2): PROXY, TCP over IPv4, from `client`:`port` to 127.0.0.1:443. */
function v2Header(client: string, port: number): Buffer {
  const body = Buffer.alloc(12);
  body.set(client.split('.').map(Number), 0);
  body.set([127, 0, 0, 1], 4);
  body.writeUInt16BE(port, 8);
  body.writeUInt16BE(443, 10);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0x00, 0x0c]), body]);
}

/**
 * One GET over TLS on a TCP connection from `from` that first sends `header`:
 * the answer's status line, or how the connection ended without one.
 */
function getAfterHeader(port: number, from: string, header: Buffer, ca: Buffer, path: string): Promise<string> {
  return new Promise((resolve) => {
    const tcp = netConnect({ host: '127.0.0.1', port, localAddress: from });
    tcp.once('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
    tcp.once('connect', () => {
      if (header.length > 0) tcp.write(header);
      const socket = connect({ socket: tcp, servername: 'localhost', ca });
      socket.setTimeout(15_000, () => socket.destroy(new Error('timed out')));
      let answer = '';
      let error = '';
      socket.on('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n`));
      socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
      socket.on('error', (err: NodeJS.ErrnoException) => (error = `error ${err.code ?? err.message}`));
      socket.on('close', () => resolve(answer.split('\r\n')[0] || error || 'closed'));
    });
  });
}

/** No verifier sweep at start, no background copies. */
const QUIET = { verify: { intervalMs: 0 }, replication: { background: false } };

describe('HTTPS front end', () => {
  const cluster = useCluster({ backends: 2, repositories: ['tls/app', 'tls/private'] });

  async function setUp(): Promise<{ dir: string; ca: TestCa; server: { cert: string; key: string; serial: string }; git: GitClient; caArgs: string[] }> {
    const dir = mkdtempSync(join(cluster().dir, 'tls-'));
    const ca = await TestCa.create(dir);
    const issued = await ca.issue('server', { cn: 'localhost', server: true });
    // githa reads copies, so the test can replace them as an operator would.
    const server = { cert: join(dir, 'githa.crt'), key: join(dir, 'githa.key'), serial: issued.serial };
    copyFileSync(issued.cert, server.cert);
    copyFileSync(issued.key, server.key);
    return { dir, ca, server, git: GitClient.forCluster(cluster()), caArgs: ['-c', `http.sslCAInfo=${ca.cert}`] };
  }

  it('clone and push over https:// with the test CA; git refuses it without; TLS 1.1 and CBC refused; a renewed certificate is used without a restart', async () => {
    const { ca, server, git, caArgs } = await setUp();
    const githa = await startGitha(cluster(), { https: { cert: server.cert, key: server.key }, config: QUIET });
    const port = githa.httpsPort!;
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'over tls\n' }, 'first');
    await git.run([...caArgs, 'push', githa.httpsUrl('tls/app'), 'main'], { cwd: work });
    const clone = await git.clone(githa.httpsUrl('tls/app'), caArgs);
    expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });

    // Without the test CA git (libcurl) does not trust githa's certificate.
    const untrusted = await git.run(['clone', githa.httpsUrl('tls/app'), await git.workdir('untrusted')], { allowFailure: true });
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toMatch(/certificate verification failed|SSL certificate problem/i);

    const trust = { ca: readFileSync(ca.cert) };
    const good = await handshake(port, trust);
    expect(good).toMatchObject({ ok: true, cert: { serialNumber: server.serial } });
    // RFC 8996: TLS 1.0 and 1.1 are refused, and so is a TLS 1.2 suite without AEAD.
    const old = await handshake(port, { ...trust, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
    expect(old.ok).toBe(false);
    const cbc = await handshake(port, { ...trust, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384' });
    expect(cbc.ok).toBe(false);
    expect(await handshake(port, { ...trust, maxVersion: 'TLSv1.2' })).toMatchObject({ ok: true, protocol: 'TLSv1.2' });

    // A renewed certificate: files replaced in place, the next connection gets it.
    const renewed = await ca.issue('renewed', { cn: 'localhost', server: true });
    copyFileSync(renewed.key, server.key);
    copyFileSync(renewed.cert, server.cert);
    expect(await handshake(port, trust)).toMatchObject({ ok: true, cert: { serialNumber: renewed.serial } });
    await git.clone(githa.httpsUrl('tls/app'), caArgs);

    // Half a renewal (a new certificate, the old key) does not load: the last good pair stays in service, and githa says why.
    const third = await ca.issue('third', { cn: 'localhost', server: true });
    copyFileSync(third.cert, server.cert);
    expect(await handshake(port, trust)).toMatchObject({ ok: true, cert: { serialNumber: renewed.serial } });
    await waitFor('the log line of the certificate that did not load', () => githa.logLines().some((l) => l.msg === 'tls certificate' && String(l.message).includes('previous certificate')));
    expect(await handshake(port, { ...trust, maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' })).toMatchObject({ ok: false });
    // …and once the key follows, the new pair is used.
    copyFileSync(third.key, server.key);
    expect(await handshake(port, trust)).toMatchObject({ ok: true, cert: { serialNumber: third.serial } });
    expect(githa.proc.exitCode).toBe(null);
  });

  it('a client certificate verified against tls.clientCa is its CN\'s user for the access rules; one from another CA is nobody', async () => {
    const { dir, ca, server, git, caArgs } = await setUp();
    const alice = await ca.issue('alice', { cn: 'alice' });
    const bob = await ca.issue('bob', { cn: 'bob' });
    const rogueCa = await TestCa.create(dir, 'rogue');
    const rogueAlice = await rogueCa.issue('alice', { cn: 'alice' });
    const access = { default: 'none', rules: [{ repos: 'tls/private', users: ['alice'], access: 'write' }, { repos: 'tls/app', access: 'read' }] };
    const githa = await startGitha(cluster(), { https: { cert: server.cert, key: server.key, clientCa: ca.cert, clientCertificates: 'optional' }, config: { ...QUIET, access } });
    const as = (c: { cert: string; key: string }): string[] => [...caArgs, '-c', `http.sslCert=${c.cert}`, '-c', `http.sslKey=${c.key}`];
    const asAlice = await git.run([...as(alice), 'clone', githa.httpsUrl('tls/private'), await git.workdir('alice')], { allowFailure: true });
    expect(asAlice.stderr).not.toMatch(/fatal/);
    expect(asAlice.code).toBe(0);
    for (const [who, args] of [['nobody', caArgs], ['bob', as(bob)], ['alice of another CA', as(rogueAlice)]] as const) {
      const r = await git.run([...args, 'clone', githa.httpsUrl('tls/private'), await git.workdir(who.replace(/ /g, '-'))], { allowFailure: true });
      expect(r.code, who).not.toBe(0);
      expect(r.stderr, who).toMatch(/not found/i);
    }
    // Anonymous callers keep what the rules give them: tls/app is readable without a certificate.
    await git.clone(githa.httpsUrl('tls/app'), caArgs);
    const denied = githa.logLines().filter((l) => l.repo === 'tls/private.git' && l.msg === 'request failed').map((l) => l.user);
    expect(new Set(denied)).toEqual(new Set(['anonymous', 'bob']));
  });

  it('clientCertificates require: no handshake without a certificate the CA signed', async () => {
    const { dir, ca, server } = await setUp();
    const carol = await ca.issue('carol', { cn: 'carol' });
    const rogue = await (await TestCa.create(dir, 'rogue2')).issue('carol', { cn: 'carol' });
    const githa: GithaProcess = await startGitha(cluster(), { https: { cert: server.cert, key: server.key, clientCa: ca.cert, clientCertificates: 'require' }, config: QUIET });
    const trust = { ca: readFileSync(ca.cert) };
    const port = githa.httpsPort!;
    // TLS 1.3 sends the refusal after the client's Finished: a request must be made to see it.
    const request = (options: ConnectionOptions): Promise<string> =>
      new Promise((resolve) => {
        const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ...trust, ...options });
        let answer = '';
        let error = '';
        socket.on('secureConnect', () => socket.write('GET /tls/app.git/info/refs?service=git-upload-pack HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n'));
        socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
        socket.on('error', (err: NodeJS.ErrnoException) => (error = `error ${err.code ?? err.message}`));
        // Closed with no answer, or an alert as an error: either way no HTTP status line.
        socket.on('close', () => resolve(answer.split('\r\n')[0] || error || 'closed'));
      });
    expect(await request({ cert: readFileSync(carol.cert), key: readFileSync(carol.key) })).toBe('HTTP/1.1 200 OK');
    expect(await request({})).toMatch(/^(error|closed)/);
    expect(await request({ cert: readFileSync(rogue.cert), key: readFileSync(rogue.key) })).toMatch(/^(error|closed)/);
    // githa saw both handshakes fail (nothing was served to them).
    await waitFor('two failed handshakes in the log', () => githa.logLines().filter((l) => l.msg === 'tls handshake failed').length >= 2);
  });

  it('behind a trusted balancer the PROXY v2 header precedes the handshake and names the client; without it the balancer is closed; an untrusted peer\'s header fails the handshake', async () => {
    const { ca, server } = await setUp();
    // startGitha's `config` replaces its `listen`: listen.https as its `https` option would set it, and the trusted balancer.
    const listen = { http: '127.0.0.1:0', admin: '127.0.0.1:0', https: '127.0.0.1:0', proxyProtocolFrom: [`${BALANCER}/32`] };
    const githa = await startGitha(cluster(), { https: { cert: server.cert, key: server.key }, config: { ...QUIET, listen } });
    const port = githa.httpsPort!;
    const caPem = readFileSync(ca.cert);
    const lines = (msg: string): Array<Record<string, unknown>> => githa.logLines().filter((l) => l.msg === msg);

    // The balancer: header, then the client's TLS. githa's certificate, an answer, and the header's address in its log.
    expect(await getAfterHeader(port, BALANCER, v2Header('198.51.100.7', 40001), caPem, '/tls/app.git/info/refs?service=git-upload-pack')).toBe('HTTP/1.1 200 OK');
    await waitFor('the request line', () => lines('request').some((l) => l.repo === 'tls/app.git'));
    expect(lines('request').map((l) => l.ip)).toEqual(['198.51.100.7']);

    // The balancer without a header (a ClientHello first): closed before any handshake, logged with the peer.
    expect(await getAfterHeader(port, BALANCER, Buffer.alloc(0), caPem, '/tls/app.git/info/refs?service=git-upload-pack')).toMatch(/^(error|closed)/);
    await waitFor('the refusal logged', () => lines('PROXY protocol header refused, connection closed').length === 1);
    expect(lines('PROXY protocol header refused, connection closed')[0]).toMatchObject({ peer: BALANCER });
    expect(lines('tls handshake failed')).toEqual([]);

    // An untrusted peer (127.0.0.1) is never read for a header: its PROXY bytes are a malformed ClientHello, logged with its own address.
    expect(await getAfterHeader(port, '127.0.0.1', v2Header('198.51.100.8', 40002), caPem, '/tls/private.git/info/refs?service=git-upload-pack')).toMatch(/^(error|closed)/);
    await waitFor('the failed handshake logged', () => lines('tls handshake failed').length === 1);
    expect(lines('tls handshake failed')[0]).toMatchObject({ client: '127.0.0.1' });
    expect(githa.logs()).not.toContain('198.51.100.8');
    expect(githa.logLines().filter((l) => l.repo === 'tls/private.git')).toEqual([]);
    // A plain client from 127.0.0.1 still gets through, as itself.
    expect(await getAfterHeader(port, '127.0.0.1', Buffer.alloc(0), caPem, '/tls/private.git/info/refs?service=git-upload-pack')).toBe('HTTP/1.1 200 OK');
    await waitFor('the second request line', () => lines('request').some((l) => l.repo === 'tls/private.git'));
    expect(lines('request').map((l) => l.ip)).toEqual(['198.51.100.7', '127.0.0.1']);
  });
});
