/**
 * SSH front end hardening (docs/security.md#ssh): algorithms and strict KEX,
 * hostile exec strings and environment, connection limits, login grace time,
 * MaxAuthTries, idle timeout, authorized_keys reload and
 * ssh.authorizedKeysCommand. Real OpenSSH client, real sshd backends, real
 * Redis.
 *
 * "No backend touched": the githa under test knows its backends' SSH
 * endpoints only, and opens its pooled backend connection on first use
 * (src/backends/ssh.ts), so a request that reached a backend shows up as a new
 * "Accepted publickey" line in a backend's sshd log (health probes only greet).
 * The repository is adopted beforehand by another githa, over HTTP, so Redis
 * holds state that must not change (checked with DEBUG DIGEST-VALUE, as
 * test/integration/http-hostile.test.ts does).
 */
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { generateKey } from '../../src/demo/ssh.js';
import { SSH_ALGORITHMS, WEAK_ALGORITHMS } from '../../src/frontends/ssh/algorithms.js';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess, type StartGithaOptions } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const REPO = 'sec/app';

/** The real OpenSSH client: no config file, these keys only, githa's host key checked strictly. */
function ssh(githa: GithaProcess, keys: string[], args: string[], extra: string[] = [], login = 'git'): Promise<Run> {
  const ids = keys.flatMap((k) => ['-i', k]);
  const base = ['-n', '-F', '/dev/null', ...ids, '-p', String(githa.sshPort), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes'];
  const opts = ['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${githa.knownHostsPath}`, '-o', 'GlobalKnownHostsFile=/dev/null'];
  return new Promise((resolve) => {
    execFile('ssh', [...base, ...extra, ...opts, `${login}@127.0.0.1`, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** An authenticated ssh2 client connection to githa (for what OpenSSH cannot send, and to hold connections open). */
function sshConnection(githa: GithaProcess, keyPath: string, options: Partial<ssh2.ConnectConfig> = {}): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  return new Promise((resolve, reject) => {
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port: githa.sshPort, username: 'git', privateKey: readFileSync(keyPath), readyTimeout: 20_000, ...options });
  });
}

/** Runs `command` on an ssh2 connection; resolves with what came back and the exit code. */
function execOn(client: ssh2.Client, command: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      channel.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      channel.on('exit', (c: number | null) => (code = c));
      channel.on('close', () => resolve({ code, stdout, stderr }));
    });
  });
}

function closed(client: ssh2.Client, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** A raw TCP connection and everything it receives; `ended` resolves when the server closes it. */
function rawConnection(port: number): { socket: Socket; received: () => Buffer; ended: Promise<void> } {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => Buffer.concat(chunks), ended };
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until githa has logged `text` (its log arrives through a pipe, a little after the client's answer). */
async function logged(githa: GithaProcess, text: string): Promise<void> {
  await waitFor(`githa to log ${JSON.stringify(text)}`, () => githa.logs().includes(text)).catch(() => {
    throw new Error(`githa did not log ${JSON.stringify(text)}:\n${githa.logs().slice(-3000)}`);
  });
}

/** Parses the name-lists of an SSH_MSG_KEXINIT payload (RFC 4253 §7.1). */
function parseKexinit(payload: Buffer): string[][] {
  expect(payload[0]).toBe(20);
  const lists: string[][] = [];
  let p = 17;
  for (let i = 0; i < 10; i++) {
    const len = payload.readUInt32BE(p);
    lists.push(len === 0 ? [] : payload.subarray(p + 4, p + 4 + len).toString('ascii').split(','));
    p += 4 + len;
  }
  return lists;
}

describe('SSH front end hardening', () => {
  const cluster = useCluster({ backends: 2, repositories: [REPO] });

  /** Only background work that touches neither backends' sshd nor repository keys (see http-hostile.test.ts). */
  const QUIET: StartGithaOptions = { ssh: true, endpoints: ['ssh'], singleCopy: true, config: { verify: { intervalMs: 0 } } };

  /** ssh config for startGitha's `config` (which replaces the whole `ssh` object). */
  function sshConfig(githaKeys: { authorizedKeys?: string }, extra: Record<string, unknown>): Record<string, unknown> {
    const c = cluster();
    return {
      hostKeys: [join(c.dir, 'githa_host_ed25519_key')],
      ...githaKeys,
      backendKey: c.ssh.clientKeyPath,
      backendKnownHosts: c.ssh.knownHostsPath,
      ...extra,
    };
  }

  /** A githa with extra `ssh.*` settings (host key and key files as startGitha makes them). */
  async function githaWith(extra: Record<string, unknown>, options: StartGithaOptions = {}): Promise<GithaProcess> {
    // The first start creates the shared host key that sshConfig names.
    await ensureAdopted();
    const path = join(cluster().dir, `keys-${Math.random().toString(16).slice(2)}`);
    writeFileSync(path, `environment="GITHA_USER=tester" ${cluster().ssh.clientPublicKey.trim()}\n`);
    return startGitha(cluster(), { ...QUIET, ...options, config: { ...QUIET.config, ssh: sshConfig({ authorizedKeys: path }, extra), ...options.config } });
  }

  let adopted = false;
  /** Another githa (HTTP) adopts the repository, so Redis has state that must not change. */
  async function ensureAdopted(): Promise<void> {
    if (adopted) return;
    const helper = await startGitha(cluster(), { endpoints: ['http'], ssh: true });
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    await git.commit(work, { 'README.md': 'hello\n' }, 'first');
    await git.push(work, helper.url(REPO), ['main']);
    await helper.stop();
    adopted = true;
  }

  function backendLogins(c: DevCluster): number {
    return c.backends.map((b) => readFileSync(b.logs.ssh, 'utf8').split('Accepted publickey').length - 1).reduce((a, b) => a + b, 0);
  }

  async function redisState(c: DevCluster): Promise<Record<string, string>> {
    const keys = (await c.redis.cli('KEYS', '*'))
      .split('\n')
      .filter((k) => k.length > 0 && !k.startsWith('githa:backend:'))
      .sort();
    if (keys.length === 0) return {};
    const digests = (await c.redis.cli('DEBUG', 'DIGEST-VALUE', ...keys)).split('\n');
    return Object.fromEntries(keys.map((k, i) => [k, digests[i]!]));
  }

  /**
   * Commands githa sent Redis since CONFIG RESETSTAT, but this test's own and
   * the background work on `githa:backend:<id>` (the health checker's HSET; the
   * HMGET reads of shared health and operator overrides, the only HMGETs in src/).
   */
  async function commandsSinceReset(c: DevCluster): Promise<string[]> {
    const ours = new Set(['config', 'debug', 'keys', 'info', 'hset', 'hmget']);
    return (await c.redis.cli('INFO', 'commandstats'))
      .split('\n')
      .map((l) => /^cmdstat_([^:]+):calls=(\d+)/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null && !ours.has(m[1]!.split('|')[0]!))
      .map((m) => `${m[1]}×${m[2]}`);
  }

  /**
   * Runs `requests` against a githa that has not reached a backend yet; then
   * no backend was logged into, Redis is unchanged and got no command, and a
   * clone through the same githa works (and does log in: the check is live).
   */
  async function untouched(githa: GithaProcess, requests: () => Promise<void>): Promise<void> {
    const c = cluster();
    expect((await fetch(`${githa.adminUrl}/readyz`)).status).toBe(200);
    const logins = backendLogins(c);
    const before = await redisState(c);
    await c.redis.cli('CONFIG', 'RESETSTAT');
    await requests();
    expect(await commandsSinceReset(c)).toEqual([]);
    expect(await redisState(c)).toEqual(before);
    expect(backendLogins(c)).toBe(logins);
    expect(githa.logs()).not.toMatch(/"level":(50|60)/);
    const git = GitClient.forCluster(c, { knownHostsPath: githa.knownHostsPath });
    const clone = await git.clone(githa.sshUrl(REPO));
    expect(readFileSync(join(clone, 'README.md'), 'utf8')).toBe('hello\n');
    await waitFor('a backend SSH login', () => backendLogins(c) > logins);
  }

  it('offers strict KEX and only the configured algorithms; OpenSSH connects, a client offering only weak ones is refused', async () => {
    const githa = await githaWith({});
    // The server's KEXINIT, as any client receives it before choosing.
    const conn = rawConnection(githa.sshPort!);
    conn.socket.write('SSH-2.0-kexinit-probe\r\n');
    await waitFor('the server KEXINIT', () => {
      const data = conn.received();
      const nl = data.indexOf('\n');
      return nl > 0 && data.length >= nl + 5 && data.length >= nl + 1 + 4 + data.readUInt32BE(nl + 1);
    });
    const data = conn.received();
    const nl = data.indexOf('\n');
    expect(data.subarray(0, nl).toString('ascii')).toBe('SSH-2.0-githa\r');
    const packet = data.subarray(nl + 1);
    const payload = packet.subarray(5, 4 + packet.readUInt32BE(0) - packet[4]!);
    const [kex, hostKey, cipherCs, cipherSc, macCs, macSc, compCs, compSc] = parseKexinit(payload);
    conn.socket.destroy();
    expect(kex).toEqual([...SSH_ALGORITHMS.kex, 'kex-strict-s-v00@openssh.com']);
    expect(hostKey).toEqual(['ssh-ed25519']);
    expect(cipherCs).toEqual(SSH_ALGORITHMS.cipher);
    expect(cipherSc).toEqual(SSH_ALGORITHMS.cipher);
    expect(macCs).toEqual(SSH_ALGORITHMS.hmac);
    expect(macSc).toEqual(SSH_ALGORITHMS.hmac);
    expect(compCs).toEqual(SSH_ALGORITHMS.compress);
    expect(compSc).toEqual(SSH_ALGORITHMS.compress);
    for (const [kind, weak] of Object.entries(WEAK_ALGORITHMS)) {
      const offered = [...kex!, ...hostKey!, ...cipherCs!, ...macCs!, ...compCs!];
      for (const name of weak) expect(offered, `${kind} ${name}`).not.toContain(name);
    }

    await untouched(githa, async () => {
      // The machine's OpenSSH connects with its defaults (and, being >= 9.6 or patched, in strict KEX mode).
      const ok = await ssh(githa, [cluster().ssh.clientKeyPath], ['help'], ['-vvv']);
      expect(ok.stderr).toMatch(/Authenticated to 127\.0\.0\.1/);
      expect(ok.stderr).toMatch(/kex-strict-s-v00@openssh\.com/);
      const weakOffers: Array<[string[], RegExp]> = [
        [['-o', 'KexAlgorithms=diffie-hellman-group14-sha1'], /no matching key exchange method found/],
        [['-o', 'KexAlgorithms=diffie-hellman-group-exchange-sha1'], /no matching key exchange method found/],
        [['-c', 'aes128-cbc'], /no matching cipher found/],
        [['-c', 'aes128-ctr', '-o', 'MACs=hmac-sha1'], /no matching MAC found/],
        [['-o', 'HostKeyAlgorithms=ssh-rsa'], /no matching host key type found/],
      ];
      for (const [options, message] of weakOffers) {
        const r = await ssh(githa, [cluster().ssh.clientKeyPath], [`git-upload-pack '${REPO}.git'`], options);
        expect(r.code, options.join(' ')).toBe(255);
        expect(r.stderr, options.join(' ')).toMatch(message);
        expect(r.stdout).toBe('');
      }
    });
  });

  it('refuses hostile exec strings and environment with a clear message, touching no backend and not Redis', async () => {
    const githa = await githaWith({});
    const key = cluster().ssh.clientKeyPath;
    await untouched(githa, async () => {
      const repo = `'${REPO}.git'`;
      const cases: Array<[string, RegExp]> = [
        ...[';', '|', '&', '$', '(', ')', '`', '<', '>', '*', '\\', '"'].map((c): [string, RegExp] => [
          `git-upload-pack ${REPO}.git${c}id`,
          /githa: unquoted shell metacharacter in command/,
        ]),
        [`git-upload-pack ${repo}; id`, /githa: unexpected character after quoted argument/],
        [`git-upload-pack ${repo} && touch /tmp/githa-pwned`, /githa: unquoted shell metacharacter/],
        [`git-upload-pack $(id)`, /githa: unquoted shell metacharacter/],
        [`git-upload-pack ${repo}\nid`, /githa: unexpected character after quoted argument/],
        [`git-upload-pack ${REPO}.git\nid`, /githa: unquoted shell metacharacter/],
        [`git-upload-pack ${repo} extra`, /githa: expected exactly one repository argument/],
        [`git-upload-pack ${repo} ${repo}`, /githa: expected exactly one repository argument/],
        [`git-upload-pack --upload-pack=touch ${repo}`, /githa: unquoted shell metacharacter/],
        [`git-upload-pack '--upload-pack=touch /tmp/githa-pwned'`, /githa: argument looks like an option/],
        [`git-upload-pack --strict ${repo}`, /githa: expected exactly one repository argument/],
        [`git-upload-pack --strict`, /githa: argument looks like an option/],
        [`git -c core.sshCommand=id upload-pack ${repo}`, /githa: unquoted shell metacharacter/],
        [`git '-c' 'core.sshCommand=id' upload-pack ${repo}`, /githa: .*githa serves git-upload-pack/],
        [`git-upload-pack -c core.hooksPath=/tmp ${repo}`, /githa: unquoted shell metacharacter/],
        [`git-upload-pack -c ${repo}`, /githa: expected exactly one repository argument/],
        [`git-upload-pack ${'a'.repeat(5000)}`, /githa: command too long/],
        [`git-upload-pack '${'a/'.repeat(2100)}x.git'`, /githa: command too long/],
        ['bash', /githa: .*githa serves git-upload-pack, git-receive-pack and git-upload-archive only/],
      ];
      for (const [command, message] of cases) {
        const r = await ssh(githa, [key], [command]);
        expect(r.code, command).not.toBe(0);
        expect(r.stderr, command).toMatch(message);
        expect(r.stdout, command).toBe('');
      }
      // What OpenSSH cannot send: a NUL inside the command.
      const client = await sshConnection(githa, key);
      const nul = await execOn(client, `git-upload-pack '${REPO}.git'\0--upload-pack=id`);
      expect(nul.code).toBe(128);
      expect(nul.stderr).toMatch(/githa: NUL in command/);
      expect(nul.stdout).toBe('');
      client.end();
      // Environment other than GIT_PROTOCOL, whatever it is meant to do to a backend's git.
      for (const env of ['GIT_CONFIG_PARAMETERS=x', 'GIT_EXEC_PATH=/tmp', 'LD_PRELOAD=/tmp/x.so', 'GIT_PROTOCOL_EVIL=1']) {
        const r = await ssh(githa, [key], [`git-upload-pack '${REPO}.git'`], ['-o', `SetEnv=${env}`]);
        expect(r.code, env).not.toBe(0);
        expect(r.stderr, env).toMatch(new RegExp(`githa: environment variable ${env.split('=')[0]} is not accepted`));
        expect(r.stdout, env).toBe('');
      }
      // A GIT_PROTOCOL value that is not a protocol request is not passed on either (ignored: git falls back to v0).
    });
    expect(() => readFileSync('/tmp/githa-pwned')).toThrow();
  });

  it('limits connections per client with a clear refusal, and unauthenticated connections in total', async () => {
    const githa = await githaWith({ maxConnectionsPerClient: 2, maxStartups: 3 });
    const key = cluster().ssh.clientKeyPath;
    await untouched(githa, async () => {
      const held = [await sshConnection(githa, key), await sshConnection(githa, key)];
      const refused = await ssh(githa, [key], [`git-upload-pack '${REPO}.git'`]);
      expect(refused.code).toBe(255);
      expect(refused.stderr).toMatch(/githa: too many connections from 127\.0\.0\.1 \(at most 2\); close some and try again/);
      await logged(githa, 'ssh connection refused');
      held[0]!.end();
      await closed(held[0]!, 10_000);
      // One slot is free again (once githa has seen the close): the next connection is served.
      let served = await ssh(githa, [key], ['help']);
      for (let i = 0; i < 20 && /too many connections/.test(served.stderr); i++) {
        await new Promise((r) => setTimeout(r, 250));
        served = await ssh(githa, [key], ['help']);
      }
      expect(served.stderr).toMatch(/githa: not a Git command/);
      held[1]!.end();
      await closed(held[1]!, 10_000);
    });

    // maxStartups: connections that never authenticate hold a slot each; one more is closed before the handshake.
    const other = await githaWith({ maxConnectionsPerClient: 10, maxStartups: 2 });
    const silent = [rawConnection(other.sshPort!), rawConnection(other.sshPort!)];
    await waitFor('every silent client to get the SSH banner', () => silent.every((s) => s.received().toString('latin1').startsWith('SSH-2.0-githa')));
    const third = rawConnection(other.sshPort!);
    await within(third.ended, 10_000, 'connection over maxStartups closed');
    expect(third.received().length).toBe(0);
    await logged(other, 'too many unauthenticated connections (2; maxStartups 2:100:2)');
    for (const s of silent) s.socket.destroy();
    await Promise.all(silent.map((s) => s.ended));
    await untouched(other, async () => {});
  });

  it('closes connections that do not authenticate within loginGraceMs and sessions idle for idleTimeoutMs, never one with data flowing', async () => {
    const githa = await githaWith({ loginGraceMs: 1000, idleTimeoutMs: 1500 });
    const key = cluster().ssh.clientKeyPath;
    await untouched(githa, async () => {
      // Says nothing at all; sends its identification and stops: both closed.
      const mute = rawConnection(githa.sshPort!);
      const stalled = rawConnection(githa.sshPort!);
      stalled.socket.write('SSH-2.0-slowloris\r\n');
      await within(Promise.all([mute.ended, stalled.ended]), 15_000, 'unauthenticated connections closed');
      await waitFor('two login grace time log lines', () => githa.logLines().filter((l) => l.msg === 'ssh login grace time exceeded').length === 2);
      // An OpenSSH client that never gets past authentication (a host key prompt nobody answers is the same).
      // Authenticated but silent: closed after idleTimeoutMs.
      const idle = await sshConnection(githa, key);
      expect(await closed(idle, 15_000)).toBe(true);
      await logged(githa, 'ssh connection idle, closed');
    });
    // A session whose client keeps sending a little lives well past idleTimeoutMs:
    // git-upload-pack's v0 request, written slowly, and a full answer.
    const client = await sshConnection(githa, key);
    const answer = await new Promise<Run>((resolve, reject) => {
      client.exec(`git-upload-pack '${REPO}.git'`, (err, channel) => {
        if (err) return reject(err);
        let out = Buffer.alloc(0);
        let sent = false;
        channel.on('data', (d: Buffer) => {
          out = Buffer.concat([out, d]);
          const text = out.toString('latin1');
          if (sent || !text.includes('0000')) return;
          sent = true;
          const sha = /^[0-9a-f]{4}([0-9a-f]{40}) /.exec(text)![1]!;
          const want = `want ${sha}\n`;
          const lines = [`${(want.length + 4).toString(16).padStart(4, '0')}${want}`, '0000', '0009done\n'];
          // Small writes spread over 3.6 s; the idle timeout is 1.5 s.
          const pieces = lines.join('').match(/.{1,10}/gs)!;
          let i = 0;
          const timer = setInterval(() => {
            if (i >= pieces.length) return clearInterval(timer);
            channel.write(pieces[i++]!);
          }, Math.ceil(3600 / pieces.length));
        });
        channel.on('close', () => resolve({ code: 0, stdout: out.toString('latin1'), stderr: '' }));
      });
    });
    expect(answer.stdout).toMatch(/NAK\n/);
    expect(answer.stdout).toContain('PACK');
    client.end();
  });

  it('closes a connection after maxAuthTries failed attempts, with a message', async () => {
    const githa = await githaWith({ maxAuthTries: 2 });
    const strangers = await Promise.all(
      ['s1', 's2', 's3'].map(async (n) => {
        const path = join(cluster().dir, `stranger-${n}-${Math.random().toString(16).slice(2)}`);
        await generateKey(path, n);
        return path;
      }),
    );
    await untouched(githa, async () => {
      const r = await ssh(githa, strangers, [`git-upload-pack '${REPO}.git'`]);
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(/githa: too many authentication failures \(2\)/);
      await logged(githa, 'ssh too many authentication failures');
      // One wrong key before the right one stays under the limit.
      const ok = await ssh(githa, [strangers[0]!, cluster().ssh.clientKeyPath], ['help']);
      expect(ok.stderr).toMatch(/githa: /);
      expect(ok.stderr).not.toMatch(/too many|Permission denied/);
    });
  });

  it('re-reads authorized_keys when a new file is renamed over it: added keys work, removed keys stop working', async () => {
    const githa = await githaWith({});
    const path = (JSON.parse(readFileSync(githa.configPath, 'utf8')) as { ssh: { authorizedKeys: string } }).ssh.authorizedKeys;
    const key = cluster().ssh.clientKeyPath;
    const newcomer = join(cluster().dir, `newcomer-${Math.random().toString(16).slice(2)}`);
    const newcomerLine = await generateKey(newcomer, 'nina-who-has-a-rather-long-key-comment@laptop');
    expect((await ssh(githa, [newcomer], ['help'])).stderr).toMatch(/Permission denied \(publickey\)/);
    // The way editors and configuration management replace a file: write a new one, rename it over.
    const replace = (text: string): void => {
      writeFileSync(`${path}.new`, text);
      renameSync(`${path}.new`, path);
    };
    replace(`${newcomerLine}\n`);
    expect((await ssh(githa, [newcomer], ['help'])).stderr).toMatch(/githa: not a Git command/);
    const removed = await ssh(githa, [key], ['help']);
    expect(removed.code).toBe(255);
    expect(removed.stderr).toMatch(/Permission denied \(publickey\)/);
    // Padded to the same size, within the same second: the new inode is still a change.
    replace(`${cluster().ssh.clientPublicKey.trim()}\n`.padEnd(newcomerLine.length + 1, ' '));
    expect((await ssh(githa, [key], ['help'])).stderr).not.toMatch(/Permission denied/);
    expect((await ssh(githa, [newcomer], ['help'])).stderr).toMatch(/Permission denied \(publickey\)/);
  });

  it('asks ssh.authorizedKeysCommand for keys not in the file: placeholders, user mapping, cache, failures refuse the key', async () => {
    await ensureAdopted();
    const dir = cluster().dir;
    const tag = Math.random().toString(16).slice(2);
    const calls = join(dir, `keys-command-calls-${tag}`);
    const keysOut = join(dir, `keys-command-out-${tag}`);
    const script = join(dir, `keys-command-${tag}.sh`);
    writeFileSync(calls, '');
    writeFileSync(keysOut, `environment="GITHA_USER=erin" ${cluster().ssh.clientPublicKey.trim()}\n`);
    // $1 login, $2 type, $3 key, $4 fingerprint; the mode is taken from the login name for the failure cases.
    writeFileSync(
      script,
      `#!/bin/sh
printf '%s|%s|%s|%s|%s\\n' "$#" "$1" "$2" "$3" "$4" >> '${calls}'
case "$1" in
  fail) echo oops >&2; exit 3 ;;
  slow) exec sleep 10 ;;
  chatty) yes '# padding padding padding padding' | head -c 300000 ;;
  *) cat '${keysOut}' ;;
esac
`,
    );
    chmodSync(script, 0o755);
    const githa = await startGitha(cluster(), {
      ...QUIET,
      config: {
        ...QUIET.config,
        ssh: sshConfig({}, { authorizedKeysCommand: [script, '%u', '%t', '%k', '%f'], authorizedKeysCommandTimeoutMs: 1000, authorizedKeysCommandMaxBytes: 65536 }),
      },
    });
    const key = cluster().ssh.clientKeyPath;
    const [type, base64] = cluster().ssh.clientPublicKey.trim().split(/\s+/) as [string, string];
    await untouched(githa, async () => {
      const r = await ssh(githa, [key], ['help']);
      expect(r.stderr).toMatch(/githa: /);
      expect(r.stderr).not.toMatch(/Permission denied/);
      // Placeholders became single arguments; the query and the signed attempt were one run (cached).
      const lines = readFileSync(calls, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^4\\|git\\|${type}\\|${base64.replace(/[+/]/g, '\\$&')}\\|SHA256:[A-Za-z0-9+/]{43}$`));
      // Cached for authorizedKeysCommandCacheMs (10 s by default): the next login runs nothing.
      await ssh(githa, [key], ['help']);
      expect(readFileSync(calls, 'utf8').trim().split('\n')).toHaveLength(1);
      // Failure, timeout, too much output: the key is refused, githa logs why and stays up.
      for (const [login, why] of [
        ['fail', 'exit status 3'],
        ['slow', 'no answer within 1000 ms'],
        ['chatty', 'more than 65536 bytes of output'],
      ] as const) {
        const refused = await ssh(githa, [key], ['help'], [], login);
        expect(refused.code, login).toBe(255);
        expect(refused.stderr, login).toMatch(/Permission denied \(publickey\)/);
        await logged(githa, `authorizedKeysCommand failed: ${why}; key refused`);
      }
      expect(githa.logs()).not.toContain('oops');
    });
    // The clone in untouched() ran as the user the command's line names.
    await waitFor("erin's request log line", () => githa.logLines().some((l) => l.msg === 'request' && l.user === 'erin'));
  });
});
