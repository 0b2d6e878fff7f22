import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient, packetTraceVersion, sha256, writeRandomFile } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real OpenSSH client against githa (no shell, strict host key checking). */
function ssh(githa: GithaProcess, keyPath: string, args: string[], extra: string[] = []): Promise<Run> {
  // -n: stdin from /dev/null, so an accepted upload-pack sees EOF after its advertisement.
  const base = ['-n', '-F', '/dev/null', '-i', keyPath, '-p', String(githa.sshPort), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes'];
  const opts = ['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${githa.knownHostsPath}`, '-o', 'GlobalKnownHostsFile=/dev/null'];
  return new Promise((resolve) => {
    // ssh takes the first value given for an option: `extra` overrides the defaults.
    execFile('ssh', [...base, ...extra, ...opts, 'git@127.0.0.1', ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function sshdAccepts(dir: string, ids: string[]): number {
  return ids.map((id) => readFileSync(join(dir, id, 'sshd.log'), 'utf8').split('Accepted publickey').length - 1).reduce((a, b) => a + b, 0);
}

describe('SSH front end', () => {
  const cluster = useCluster({ backends: 3, repositories: ['ssh/app', 'ssh/big', 'ssh/only', 'ssh/refuse', 'git/app'] });

  it('clones, fetches and pushes over ssh:// and scp-style URLs, protocol v0 and v2, with the version recorded before git returns', async () => {
    const githa = await startGitha(cluster(), { ssh: true });
    for (const version of [0, 2] as const) {
      const git = GitClient.forCluster(cluster(), { protocolVersion: version, knownHostsPath: githa.knownHostsPath });
      const work = await git.init();
      const sha = await git.commit(work, { [`v${version}.txt`]: 'hello\n' }, `over ssh v${version}`);
      await git.push(work, githa.sshUrl('ssh/app'), [`main:refs/heads/v${version}`]);
      // Held acknowledgement: the push returned, so the version is already recorded.
      const versions = await cluster().redis.cli('HVALS', 'githa:repo:{ssh/app.git}:versions');
      expect(Math.max(...versions.trim().split('\n').map(Number))).toBeGreaterThan(1);
      expect(await cluster().redis.cli('EXISTS', 'githa:repo:{ssh/app.git}:writing')).toBe('0');

      const clone = await git.clone(githa.sshUrl('ssh/app'), ['--branch', `v${version}`], { tracePackets: true });
      expect(await git.revParse(clone, 'HEAD')).toBe(sha);
      const traced = await git.run(['fetch', 'origin'], { cwd: clone, tracePackets: true });
      expect(packetTraceVersion(traced.stderr)).toBe(version === 2 ? 2 : 0);
    }
    // scp-style: git@host:repo.git, the port given to ssh itself.
    const git = GitClient.forCluster(cluster(), { knownHostsPath: githa.knownHostsPath });
    const clone = await git.run(['clone', `git@127.0.0.1:ssh/app.git`, join(cluster().dir, 'scp-clone')], {
      env: {
        GIT_SSH_COMMAND: `ssh -F /dev/null -p ${githa.sshPort} -i '${cluster().ssh.clientKeyPath}' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile='${githa.knownHostsPath}' -o GlobalKnownHostsFile=/dev/null`,
      },
    });
    expect(clone.code).toBe(0);
    const refs = await git.forEachRef(join(cluster().dir, 'scp-clone'), 'refs/remotes/origin');
    expect(Object.keys(refs)).toEqual(expect.arrayContaining(['refs/remotes/origin/v0', 'refs/remotes/origin/v2']));
  });

  it('pushes and clones 50 MB of incompressible data over SSH', async () => {
    const githa = await startGitha(cluster(), { ssh: true, logLevel: 'info' });
    const git = GitClient.forCluster(cluster(), { knownHostsPath: githa.knownHostsPath });
    const work = await git.init();
    const digest = await writeRandomFile(join(work, 'blob.bin'), 50 * 1024 * 1024);
    await git.run(['add', 'blob.bin'], { cwd: work });
    await git.run(['commit', '-qm', 'big'], { cwd: work });
    await git.push(work, githa.sshUrl('ssh/big'), ['main']);
    const clone = await git.clone(githa.sshUrl('ssh/big'));
    expect(sha256(readFileSync(join(clone, 'blob.bin')))).toBe(digest);
  });

  it('two githa processes with the same host key: a client that trusted one trusts the other', async () => {
    const one = await startGitha(cluster(), { ssh: true });
    const two = await startGitha(cluster(), { ssh: true });
    const knownHosts = join(cluster().dir, 'alias_known_hosts');
    writeFileSync(knownHosts, '');
    const alias = ['-o', 'HostKeyAlias=githa.example', '-o', `UserKnownHostsFile=${knownHosts}`];
    // First contact learns the key under the service's name…
    const first = await ssh(one, cluster().ssh.clientKeyPath, ["git-upload-pack 'ssh/app.git'"], [...alias, '-o', 'StrictHostKeyChecking=accept-new']);
    expect(readFileSync(knownHosts, 'utf8')).toMatch(/^githa\.example ssh-ed25519 /);
    expect(first.stdout).toMatch(/agent=git\//);
    // …and the other githa is accepted with strict checking and no warning.
    const second = await ssh(two, cluster().ssh.clientKeyPath, ["git-upload-pack 'ssh/app.git'"], [...alias, '-o', 'StrictHostKeyChecking=yes']);
    expect(second.stdout).toMatch(/agent=git\//);
    expect(second.stderr).not.toMatch(/WARNING|differs|changed/i);
  });

  it('refuses bad keys, commands, paths and environment with a clear message, reaching no backend', async () => {
    const githa = await startGitha(cluster(), { ssh: true });
    const ids = cluster().backends.map((b) => b.id);
    const before = sshdAccepts(cluster().dir, ids);

    const otherKey = join(cluster().dir, 'stranger_key');
    await new Promise<void>((resolve, reject) =>
      execFile('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey], (e) => (e ? reject(e) : resolve())),
    );
    const stranger = await ssh(githa, otherKey, ["git-upload-pack 'ssh/refuse.git'"]);
    expect(stranger.code).not.toBe(0);
    expect(stranger.stderr).toMatch(/Permission denied \(publickey\)/);

    const key = cluster().ssh.clientKeyPath;
    const cases: Array<[string, RegExp]> = [
      ['ls -la', /githa: /],
      ["git-upload-pack '--help'", /githa: /],
      ["git-upload-pack 'ssh/refuse.git'; touch /tmp/githa-pwned", /githa: /],
      ["git-upload-pack '../etc/passwd'", /githa: /],
      ["git-upload-pack 'a/../../b.git'", /githa: /],
      ['git-upload-pack ssh/refuse.git extra', /githa: /],
      ["sh -c 'git-upload-pack x'", /githa: /],
    ];
    for (const [command, message] of cases) {
      const r = await ssh(githa, key, [command]);
      expect(r.code, command).not.toBe(0);
      expect(r.stderr, command).toMatch(message);
      expect(r.stdout, command).toBe('');
    }
    expect(() => readFileSync('/tmp/githa-pwned')).toThrow();

    // An interactive login gets a greeting and is closed.
    const shell = await ssh(githa, key, [], ['-tt']);
    expect(shell.stdout + shell.stderr).toMatch(/githa: hi tester, this host serves Git only/);
    expect(shell.code).not.toBe(0);

    // Environment other than GIT_PROTOCOL never reaches a backend: the command is refused, clearly.
    const env = await ssh(githa, key, ["git-upload-pack 'ssh/refuse.git'"], ['-o', 'SetEnv=EVIL=1']);
    expect(env.code).not.toBe(0);
    expect(env.stderr).toMatch(/githa: environment variable EVIL is not accepted; githa passes on GIT_PROTOCOL only/);
    expect(env.stdout).toBe('');
    expect(githa.logs()).toContain('"key":"EVIL"');
    // LANG and LC_*, which OpenSSH sends by default, are ignored.
    const lang = await ssh(githa, key, ["git-upload-pack 'ssh/refuse.git'"], ['-o', 'SetEnv=LANG=C.UTF-8 LC_ALL=C']);
    expect(lang.stdout).toBe('0000'); // an empty repository advertises nothing
    expect(lang.stderr).not.toMatch(/githa:/);

    // Only the one legitimate upload-pack above reached a backend.
    expect(sshdAccepts(cluster().dir, ids) - before).toBeLessThanOrEqual(1);
  });

  it('re-reads authorized_keys when it changes, and records the user behind the key', async () => {
    const githa = await startGitha(cluster(), { ssh: true });
    const path = (JSON.parse(readFileSync(githa.configPath, 'utf8')) as { ssh: { authorizedKeys: string } }).ssh.authorizedKeys;
    const key = cluster().ssh.clientKeyPath;
    const line = cluster().ssh.clientPublicKey.trim();
    expect((await ssh(githa, key, ["git-upload-pack 'ssh/refuse.git'"])).stdout).toBe('0000');

    writeFileSync(path, '# nobody\n');
    const revoked = await ssh(githa, key, ["git-upload-pack 'ssh/refuse.git'"]);
    expect(revoked.stderr).toMatch(/Permission denied \(publickey\)/);

    writeFileSync(path, `environment="GITHA_USER=carol" ${line}\n`);
    const git = GitClient.forCluster(cluster(), { knownHostsPath: githa.knownHostsPath });
    const work = await git.init();
    await git.commit(work, { 'carol.txt': 'hi\n' }, 'by carol');
    await git.push(work, githa.sshUrl('ssh/refuse'), ['main:refs/heads/carol']);
    const log = await cluster().redis.cli('XRANGE', 'githa:repo:{ssh/refuse.git}:log', '-', '+');
    expect(log).toMatch(/user\ncarol\ntransport\nssh/);

    // An RSA key: OpenSSH signs with rsa-sha2-512, which githa verifies with that hash.
    const rsa = join(cluster().dir, 'rsa_key');
    await new Promise<void>((resolve, reject) =>
      execFile('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-N', '', '-C', 'dave@laptop', '-f', rsa], (e) => (e ? reject(e) : resolve())),
    );
    writeFileSync(path, `${line}\n${readFileSync(`${rsa}.pub`, 'utf8')}`);
    const viaRsa = await ssh(githa, rsa, ["git-upload-pack 'ssh/refuse.git'"], ['-v']);
    expect(viaRsa.stdout).toMatch(/refs\/heads\/carol/);
    expect(viaRsa.stderr).toMatch(/rsa-sha2-(256|512)/);
  });

  it('git:// front end serves reads, refuses pushes unless enabled', async () => {
    const githa = await startGitha(cluster(), { git: true });
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'g.txt': 'git://\n' }, 'via http');
    await git.push(work, githa.url('git/app'), ['main']);
    for (const version of [0, 2] as const) {
      const clone = await git.clone(githa.gitUrl('git/app'), [], { protocolVersion: version });
      expect(await git.revParse(clone, 'HEAD')).toBe(sha);
    }
    const refused = await git.push(work, githa.gitUrl('git/app'), ['main:refs/heads/other'], [], { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/remote error: githa: pushing over git:\/\/ is disabled/);

    const open = await startGitha(cluster(), { git: { allowPush: true } });
    const next = await git.commit(work, { 'g.txt': 'pushed over git://\n' }, 'via git');
    await git.push(work, open.gitUrl('git/app'), ['main']);
    const lsRemote = await git.run(['ls-remote', githa.url('git/app'), 'refs/heads/main']);
    expect(lsRemote.stdout).toContain(next);
  });
});
