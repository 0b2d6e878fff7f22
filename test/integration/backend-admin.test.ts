/**
 * githa's admin account on real backends (docs/operations.md "The admin
 * account"): SshRepositoryAdmin over a backend's sshd runs the githa-admin
 * program; b1's key is a plain login, b2's is restricted by githa-gate
 * (startDevCluster `gatedAdmin`), which runs the installed program and never
 * the text sent to it, and still passes Git services to git-shell.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { adminCommand, sshRepositoryAdmin, type SshRepositoryAdmin } from '../../src/backends/admin.js';
import { SshBackendClient } from '../../src/backends/ssh.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { BackendAdminError, BackendUnavailableError, InvalidRepositoryNameError } from '../../src/errors.js';
import { useCluster, type DevBackend } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';

const execFileP = promisify(execFile);
const cluster = useCluster({ backends: 2, gatedAdmin: ['b2'] });
const opened: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(opened.map((o) => o.close()));
});

function adminOf(b: DevBackend): SshRepositoryAdmin {
  const c = cluster();
  const admin = sshRepositoryAdmin({
    backend: { id: b.id, ssh: b.sshUrl, admin: true },
    ssh: { backendKey: c.ssh.clientKeyPath, backendKnownHosts: c.ssh.knownHostsPath },
    repositories: { trashDir: DEFAULTS.repositories.trashDir, initialBranch: 'main', gitConfig: { 'http.receivepack': 'true', 'githa.test': "it's $(x)" } },
    timeoutMs: 10_000,
  });
  opened.push(admin);
  return admin;
}

/** A raw exec on a backend with githa's key, as an attacker holding it would send. */
async function raw(b: DevBackend, command: string, limits = { maxOutputBytes: 1 << 20, timeoutMs: 10_000 }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = cluster();
  const client = new SshBackendClient({ id: b.id, url: b.sshUrl, privateKey: c.ssh.clientKeyPath, knownHosts: c.ssh.knownHostsPath, timeoutMs: 10_000 });
  try {
    return await client.run(command, limits);
  } finally {
    await client.close();
  }
}

async function gitConfig(gitDir: string, key: string): Promise<string> {
  return (await execFileP('git', ['--git-dir', gitDir, 'config', key])).stdout.trim();
}

for (const id of ['b1', 'b2']) {
  describe(`${id === 'b1' ? 'a plain login' : 'a key restricted by githa-gate'} (${id})`, () => {
    it('create → listed → clone and push over HTTP → rename → trash → trashed → restore → purge', async () => {
      const c = cluster();
      const b = c.backend(id);
      const admin = adminOf(b);
      const repo = `life-${id}/app.git`;
      expect(await admin.create(repo, { description: 'The app' })).toBe('created');
      expect(await admin.create(repo)).toBe('exists');
      expect((await admin.list()).repositories).toContain(repo);
      const gitDir = join(b.root, repo);
      expect(await gitConfig(gitDir, 'http.receivepack')).toBe('true');
      expect(await gitConfig(gitDir, 'githa.test')).toBe("it's $(x)");
      expect((await execFileP('git', ['--git-dir', gitDir, 'symbolic-ref', 'HEAD'])).stdout.trim()).toBe('refs/heads/main');

      const git = GitClient.forCluster(c);
      const work = await git.clone(b.url('http', repo));
      const head = await git.commit(work, { 'README.md': 'hello\n' });
      await git.push(work, b.url('http', repo), ['HEAD:refs/heads/main']);
      expect(await git.lsRemote(b.url('http', repo))).toMatchObject({ 'refs/heads/main': head });

      const moved = `life-${id}/renamed.git`;
      expect(await admin.rename(repo, moved)).toBe('renamed');
      expect(await admin.rename(repo, moved)).toBe('absent');
      expect(await admin.create(repo)).toBe('created');
      expect(await admin.rename(repo, moved)).toBe('exists');
      expect(await admin.trash(repo, '20261206T074700Z')).toBe('trashed');
      expect(await git.lsRemote(b.url('http', moved))).toMatchObject({ 'refs/heads/main': head });

      expect(await admin.trash(moved, '20261206T074800Z')).toBe('trashed');
      expect(await admin.trash(moved, '20261206T074800Z')).toBe('absent');
      expect((await admin.list()).repositories).not.toContain(moved);
      expect(await admin.trashed()).toEqual(
        expect.arrayContaining([
          { stamp: '20261206T074700Z', repo },
          { stamp: '20261206T074800Z', repo: moved },
        ]),
      );
      expect(await admin.restore(moved)).toEqual({ status: 'restored', stamp: '20261206T074800Z' });
      expect(await admin.restore(moved)).toEqual({ status: 'absent' });
      expect(await git.lsRemote(b.url('http', moved))).toMatchObject({ 'refs/heads/main': head });

      expect(await admin.create(repo)).toBe('created');
      expect(await admin.restore(repo)).toEqual({ status: 'exists', stamp: '20261206T074700Z' });
      expect(await admin.purge('20261206T074700Z')).toEqual([]);
      expect(await admin.purge('20261206T074701Z', repo)).toEqual([{ stamp: '20261206T074700Z', repo }]);
      expect((await admin.trashed()).filter((e) => e.repo === repo)).toEqual([]);
    });

    it('keeps the layout it finds: X and X/.git are renamed, trashed and restored as they are', async () => {
      const b = cluster().backend(id);
      const admin = adminOf(b);
      for (const layout of ['X', 'X/.git'] as const) {
        const name = `lay-${id}/${layout === 'X' ? 'bare' : 'work'}`;
        await b.createRepository(name, layout);
        const listing = await admin.list();
        expect(listing.repositories).toContain(`${name}.git`);
        expect(await admin.rename(`${name}.git`, `${name}-2.git`)).toBe('renamed');
        const dir = layout === 'X' ? join(b.root, `${name}-2`) : join(b.root, `${name}-2`, '.git');
        expect(existsSync(join(dir, 'HEAD'))).toBe(true);
        expect(existsSync(join(b.root, `${name}-2.git`))).toBe(false);
        expect(await admin.trash(`${name}-2.git`, '20261206T080000Z')).toBe('trashed');
        expect(existsSync(dir)).toBe(false);
        expect(await admin.restore(`${name}-2.git`, '20261206T080000Z')).toEqual({ status: 'restored', stamp: '20261206T080000Z' });
        expect(existsSync(join(dir, 'HEAD'))).toBe(true);
      }
    });

    it('a hostile name is refused before anything is sent; the program refuses one sent around githa', async () => {
      const c = cluster();
      const b = c.backend(id);
      const admin = adminOf(b);
      const marker = join(c.dir, `pwned-${id}`);
      for (const name of [`$(touch ${marker}).git`, `x;touch ${marker}.git`, `\`touch ${marker}\`.git`, '../escape.git', '-x.git']) {
        await expect(admin.create(name)).rejects.toBeInstanceOf(InvalidRepositoryNameError);
      }
      const around = await raw(b, adminCommand('trash', [b.root, '.githa-trash', '../escape.git', '20261206T074700Z']));
      expect([around.code, around.stderr]).toEqual([2, 'githa-admin: refused path: ../escape.git\n']);
      const quoted = await raw(b, adminCommand('create', [b.root, `q-${id}.git`, 'main', '', `$(touch ${marker})`]));
      expect(quoted).toMatchObject({ code: 0, stdout: 'created\n' });
      expect(existsSync(marker)).toBe(false);
    });
  });
}

describe('githa-gate on b2', () => {
  it('never runs the program it is sent, and refuses anything but Git and githa-admin', async () => {
    const c = cluster();
    const b2 = c.backend('b2');
    const marker = join(c.dir, 'gate-ran-sent-script');
    const sent = await raw(b2, `sh -c 'touch ${marker}' githa-admin list '${b2.root}' '.githa-trash'`);
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(/^repo /m);
    expect(existsSync(marker)).toBe(false);
    const touch = await raw(b2, `touch ${marker}`);
    expect([touch.code, touch.stderr]).toEqual([1, 'githa-gate: this key runs Git services and githa-admin only\n']);
    expect(existsSync(marker)).toBe(false);
    // The same command on b1 (a plain login) does run: the gate is what stops it.
    const plain = await raw(c.backend('b1'), `touch ${marker}`);
    expect(plain.code).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it('Git over SSH still works through it, protocol v2 included (GIT_PROTOCOL passes)', async () => {
    const c = cluster();
    const b2 = c.backend('b2');
    await b2.createRepository('gated/app');
    const git = GitClient.forCluster(c);
    const work = await git.clone(b2.url('ssh', 'gated/app'));
    const head = await git.commit(work, { 'a.txt': 'a\n' });
    await git.push(work, b2.url('ssh', 'gated/app'), ['HEAD:refs/heads/main']);
    expect(await git.lsRemote(b2.url('ssh', 'gated/app'))).toMatchObject({ 'refs/heads/main': head });
    expect(await git.negotiatedVersion(b2.url('ssh', 'gated/app'))).toBe(2);
  });
});

describe('githa with admin on its backends', () => {
  it('starts with `admin: true` (the ssh URL\'s account) and serves as before', async () => {
    const c = cluster();
    await c.createRepository('wired/app');
    const g = await startGitha(c, { admin: true });
    expect(JSON.parse(readFileSync(g.configPath, 'utf8')).backends.map((b: { admin?: unknown }) => b.admin)).toEqual([true, true]);
    const git = GitClient.forCluster(c);
    const work = await git.clone(g.url('wired/app'));
    await git.commit(work, { 'a.txt': 'a\n' });
    await git.push(work, g.url('wired/app'), ['HEAD:refs/heads/main']);
  });
});

describe('SshBackendClient.run limits', () => {
  it('a command that outlives its time or writes too much is stopped (BackendAdminError); an unreachable backend is BackendUnavailableError', async () => {
    const c = cluster();
    const b1 = c.backend('b1');
    await expect(raw(b1, 'sleep 30', { maxOutputBytes: 1000, timeoutMs: 300 })).rejects.toThrow(/did not finish within 300 ms/);
    const flood = raw(b1, 'yes', { maxOutputBytes: 100_000, timeoutMs: 10_000 });
    await expect(flood).rejects.toBeInstanceOf(BackendAdminError);
    await expect(flood).rejects.toThrow(/more than 100000 bytes/);
    await b1.stop();
    await expect(adminOf(b1).list()).rejects.toBeInstanceOf(BackendUnavailableError);
  });
});
