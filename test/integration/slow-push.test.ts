/**
 * A slow push must not hold a repository's write lock (issue 19 item 5): a
 * client that sends its command list and then trickles its pack, over smart
 * HTTP and over SSH, is stopped once its bytes over push.rateWindowMs fall
 * under push.minBytesPerSecond; the lock is released and the next push of
 * the repository goes through at once. And one user holds at most
 * push.maxLocksPerUser write locks at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

/** One pkt-line (gitprotocol-common). */
function pkt(payload: string): Buffer {
  return Buffer.from(`${(payload.length + 4).toString(16).padStart(4, '0')}${payload}`, 'latin1');
}

/**
 * The start of a valid pack that the backend keeps waiting on (gitprotocol-pack, gitformat-pack): one blob
 * of 1,000,000 bytes, zlib'd as an uncompressed (stored) deflate block of 65,535 bytes, then its filler.
 */
const PACK = Buffer.concat([
  Buffer.from('PACK\0\0\0\x02\0\0\0\x01', 'latin1'),
  Buffer.from([0xb0, 0xa4, 0xe8, 0x03]), // type 3 (blob), size 1,000,000
  Buffer.from([0x78, 0x01, 0x00, 0xff, 0xff, 0x00, 0x00]), // zlib header; a stored block, not final, 65,535 bytes
]);
const packByte = (i: number): Buffer => (i < PACK.length ? PACK.subarray(i, i + 1) : Buffer.from('a'));
const NEW_OID = '1'.repeat(40);

/** Calls `send` every `everyMs` until stopped: the client's trickle (its pace is what is under test, not a wait). */
function trickle(send: (b: Buffer) => boolean, everyMs: number): () => void {
  let i = 0;
  const timer = setInterval(() => {
    if (!send(packByte(i))) clearInterval(timer);
    i++;
  }, everyMs);
  return () => clearInterval(timer);
}

describe('slow pushes', () => {
  const cluster = useCluster({ backends: 2 });

  async function seeded(githa: GithaProcess, repo: string): Promise<{ git: GitClient; work: string; sha: string }> {
    await cluster().createRepository(repo);
    const git = GitClient.forCluster(cluster(), { knownHostsPath: githa.knownHostsPath });
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': `${repo}\n` }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    return { git, work, sha };
  }

  const lockHeld = async (repo: string): Promise<boolean> => (await cluster().redis.cli('EXISTS', `githa:lock:{${repo}.git}`)).trim() === '1';

  /** A smart-HTTP receive-pack POST that sends its command list, then one pack byte every `everyMs`. */
  function httpTrickle(githa: GithaProcess, repo: string, oldOid: string, everyMs: number): { answer: () => string; socket: Socket } {
    const url = new URL(githa.httpUrl);
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    socket.on('error', () => {});
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    const chunk = (b: Buffer): boolean => {
      if (socket.destroyed) return false;
      socket.write(Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]));
      return true;
    };
    socket.write(
      `POST /${repo}.git/git-receive-pack HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/x-git-receive-pack-request\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    chunk(Buffer.concat([pkt(`${oldOid} ${NEW_OID} refs/heads/main\0 report-status side-band-64k agent=slow-test\n`), Buffer.from('0000')]));
    const stop = trickle(chunk, everyMs);
    socket.on('close', stop);
    onTestFinished(() => {
      stop();
      socket.destroy();
    });
    return { answer: () => answer, socket };
  }

  /** `git-receive-pack` over SSH through githa: reads the advertisement, sends the command list, then trickles. */
  function sshTrickle(githa: GithaProcess, repo: string, oldOid: string, everyMs: number, silent = false): { out: () => string; proc: ChildProcess } {
    const c: DevCluster = cluster();
    const proc = spawn(
      'ssh',
      [
        '-F', '/dev/null', '-i', c.ssh.clientKeyPath, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
        '-o', `UserKnownHostsFile=${githa.knownHostsPath}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
        '-p', String(githa.sshPort), 'git@127.0.0.1', `git-receive-pack '${repo}.git'`,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    let stop = (): void => {};
    let started = false;
    const onData = (b: Buffer): void => {
      out += b.toString('latin1');
      // The advertisement ends with a flush-pkt: then the client speaks.
      if (!started && out.includes('0000')) {
        started = true;
        if (silent) return;
        proc.stdin!.write(Buffer.concat([pkt(`${oldOid} ${NEW_OID} refs/heads/main\0 report-status agent=slow-test\n`), Buffer.from('0000')]));
        stop = trickle((b) => {
          if (proc.exitCode !== null || proc.stdin!.destroyed) return false;
          proc.stdin!.write(b);
          return true;
        }, everyMs);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString('latin1')));
    proc.stdin!.on('error', () => {});
    proc.on('exit', () => stop());
    onTestFinished(() => {
      stop();
      proc.kill('SIGKILL');
    });
    return { out: () => out, proc };
  }

  /** A second push of the same repository, made right after: with locks.waitMs 1 s it fails "busy" if the lock is still held. */
  async function pushesNow(git: GitClient, work: string, url: string, what: string): Promise<void> {
    const sha = await git.commit(work, { 'next.txt': what }, what);
    await git.push(work, url, ['main']);
    expect(await git.run(['ls-remote', url, 'refs/heads/main'], { cwd: work }).then((r) => r.stdout.split('\t')[0])).toBe(sha);
  }

  const PACE = { minBytesPerSecond: 100, rateWindowMs: 2_000, maxTransferMs: 0 };

  it('stops an HTTP push that trickles its pack, releases the lock, and the next push goes through at once', async () => {
    const githa = await startGitha(cluster(), { config: { push: PACE, locks: { leaseMs: 10_000, waitMs: 1_000 } } });
    const { git, work, sha } = await seeded(githa, 'slow/http');
    const slow = httpTrickle(githa, 'slow/http', sha, 250);
    await waitFor('the trickling push to hold the lock', () => lockHeld('slow/http'));
    // Stopped with a clear message, never acknowledged.
    await waitFor('githa to stop the trickling push', () => slow.answer().includes('push stopped'), 20_000, { detail: slow.answer });
    expect(slow.answer()).toMatch(/HTTP\/1\.1 200/);
    expect(slow.answer()).toContain('push.minBytesPerSecond');
    expect(slow.answer()).toMatch(/ng refs\/heads\/main/);
    expect(slow.answer()).not.toMatch(/ok refs\/heads\/main/);
    expect(await lockHeld('slow/http')).toBe(false);
    await pushesNow(git, work, githa.url('slow/http'), 'after-http');
    // Nothing recorded of the cut push; the repository is not frozen (no marker).
    expect((await cluster().redis.cli('EXISTS', 'githa:repo:{slow/http.git}:writing')).trim()).toBe('0');
    const cut = githa.logLines().find((l) => l.msg === 'push stopped for its pace; its backend request is cut');
    expect(cut).toMatchObject({ repo: 'slow/http.git', reason: 'slow' });
    const metrics = await (await fetch(`${githa.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/githa_pushes_limited_total\{reason="slow"\} 1/);
  });

  it('stops an SSH push that trickles its pack, releases the lock, and the next push goes through at once', async () => {
    const githa = await startGitha(cluster(), { ssh: true, config: { push: PACE, locks: { leaseMs: 10_000, waitMs: 1_000 } } });
    const { git, work, sha } = await seeded(githa, 'slow/ssh');
    const slow = sshTrickle(githa, 'slow/ssh', sha, 250);
    await waitFor('the trickling push to hold the lock', () => lockHeld('slow/ssh'));
    await waitFor('githa to stop the trickling push', () => slow.out().includes('push stopped'), 20_000, { detail: slow.out });
    await waitFor('the ssh session to end', () => slow.proc.exitCode !== null || slow.proc.signalCode !== null);
    expect(slow.out()).toMatch(/ng refs\/heads\/main githa: push stopped/);
    expect(slow.proc.exitCode).not.toBe(0);
    expect(await lockHeld('slow/ssh')).toBe(false);
    await pushesNow(git, work, githa.sshUrl('slow/ssh'), 'after-ssh');
    expect((await cluster().redis.cli('EXISTS', 'githa:repo:{slow/ssh.git}:writing')).trim()).toBe('0');
  });

  it('stops an SSH push that sends nothing after the advertisement, telling the client on stderr', async () => {
    const githa = await startGitha(cluster(), { ssh: true, config: { push: PACE, locks: { leaseMs: 10_000, waitMs: 1_000 } } });
    const { git, work, sha } = await seeded(githa, 'slow/idle');
    const idle = sshTrickle(githa, 'slow/idle', sha, 250, true);
    await waitFor('the silent push to hold the lock', () => lockHeld('slow/idle'));
    await waitFor('the ssh session to end', () => idle.proc.exitCode !== null || idle.proc.signalCode !== null, 20_000, { detail: idle.out });
    expect(idle.out()).toContain('githa: push stopped: its data arrived at under 100 bytes/s over 2 s (push.minBytesPerSecond)');
    expect(await lockHeld('slow/idle')).toBe(false);
    await pushesNow(git, work, githa.sshUrl('slow/idle'), 'after-idle');
    expect((await cluster().redis.cli('EXISTS', 'githa:repo:{slow/idle.git}:writing')).trim()).toBe('0');
  });

  it('refuses a push by a user who already holds push.maxLocksPerUser write locks', async () => {
    // A window long enough that the trickle keeps its lock for the whole test.
    const githa = await startGitha(cluster(), {
      ssh: true,
      config: { push: { minBytesPerSecond: 100, rateWindowMs: 600_000, maxTransferMs: 0, maxLocksPerUser: 1 }, locks: { leaseMs: 10_000, waitMs: 1_000 } },
    });
    const a = await seeded(githa, 'cap/a');
    const b = await seeded(githa, 'cap/b');
    const slow = sshTrickle(githa, 'cap/a', a.sha, 500);
    await waitFor('the trickling push to hold the lock of cap/a', () => lockHeld('cap/a'));
    // The same user (the SSH key's "tester") pushing another repository is refused, with the limit named.
    await b.git.commit(b.work, { 'x.txt': 'x' }, 'x');
    const refused = await b.git.push(b.work, githa.sshUrl('cap/b'), ['main'], [], { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toContain('push.maxLocksPerUser');
    expect(await lockHeld('cap/b')).toBe(false);
    // Another user (anonymous over HTTP) is not counted with it.
    await pushesNow(b.git, b.work, githa.url('cap/b'), 'anonymous');
    // Once the first push ends, the user may push again.
    slow.proc.kill('SIGKILL');
    await waitFor('the lock of cap/a to be released', async () => !(await lockHeld('cap/a')));
    await pushesNow(b.git, b.work, githa.sshUrl('cap/b'), 'tester-again');
    const metrics = await (await fetch(`${githa.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/githa_pushes_limited_total\{reason="user-locks"\} 1/);
  });
});
