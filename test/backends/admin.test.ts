/**
 * The admin account's client (src/backends/admin.ts) and program
 * (src/backends/admin-script.ts = deploy/backend/githa-admin): the command
 * line of each operation, hostile names refused before anything runs, the
 * answers parsed; and the program itself run by a local `sh -c` exactly as
 * the backend's login shell runs the command line githa sends.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { adminCommand, parseListing, parseTrash, SshRepositoryAdmin, trashStamp, type AdminExec } from '../../src/backends/admin.js';
import { ADMIN_SCRIPT } from '../../src/backends/admin-script.js';
import { sqQuote } from '../../src/backends/ssh-url.js';
import { buildConfig } from '../../src/config/load.js';
import { BackendAdminError, ConfigError, InvalidRepositoryNameError } from '../../src/errors.js';

const run = promisify(execFile);
const REPOS = { trashDir: '.githa-trash', initialBranch: 'main', gitConfig: { 'http.receivepack': 'true' } };
const Q = sqQuote(ADMIN_SCRIPT);

/** An admin whose exec records each command line and answers `answer`. */
function recording(answer: { code: number | null; stdout?: string; stderr?: string } = { code: 0, stdout: '' }): { admin: SshRepositoryAdmin; calls: string[] } {
  const calls: string[] = [];
  const exec: AdminExec = async (command) => {
    calls.push(command);
    return { code: answer.code, stdout: answer.stdout ?? '', stderr: answer.stderr ?? '' };
  };
  return { admin: new SshRepositoryAdmin({ backend: 'b1', root: '/srv/git', repositories: REPOS, exec }), calls };
}

describe('the program', () => {
  it('ships as deploy/backend/githa-admin, the same text after a #!/bin/sh line', () => {
    expect(readFileSync(resolve(import.meta.dirname, '../../deploy/backend/githa-admin'), 'utf8')).toBe(`#!/bin/sh\n${ADMIN_SCRIPT}`);
  });

  it('holds no single quote and no "!", so it is one plain quoted word githa-gate can skip', () => {
    expect(ADMIN_SCRIPT).not.toMatch(/['!]/);
    expect(Q).toBe(`'${ADMIN_SCRIPT}'`);
  });
});

describe('the command line', () => {
  const cases: Array<[string, (a: SshRepositoryAdmin) => Promise<unknown>, string, string]> = [
    ['list', (a) => a.list(), '', "list '/srv/git' '.githa-trash'"],
    ['create', (a) => a.create('team/app.git', { description: 'The app' }), 'created', "create '/srv/git' 'team/app.git' 'main' '' 'The app' 'http.receivepack' 'true'"],
    ['trash', (a) => a.trash('team/app.git', '20261206T074700Z'), 'trashed', "trash '/srv/git' '.githa-trash' 'team/app.git' '20261206T074700Z'"],
    ['restore', (a) => a.restore('team/app.git'), 'restored 20261206T074700Z', "restore '/srv/git' '.githa-trash' 'team/app.git'"],
    ['restore a stamp', (a) => a.restore('app.git', '20261206T074700Z'), 'restored 20261206T074700Z', "restore '/srv/git' '.githa-trash' 'app.git' '20261206T074700Z'"],
    ['rename', (a) => a.rename('a.git', 'team/b.git'), 'renamed', "rename '/srv/git' 'a.git' 'team/b.git'"],
    ['trashed', (a) => a.trashed(), '', "trashed '/srv/git' '.githa-trash'"],
    ['purge', (a) => a.purge('20261106T000000Z', 'app.git'), '', "purge '/srv/git' '.githa-trash' '20261106T000000Z' 'app.git'"],
  ];
  it.each(cases)('%s', async (_what, call, stdout, args) => {
    const { admin, calls } = recording({ code: 0, stdout });
    await call(admin);
    expect(calls).toEqual([`sh -c ${Q} githa-admin ${args}`]);
  });

  it('quotes every argument like git (sq_quote)', () => {
    expect(adminCommand('create', ["it's", 'a!b'])).toBe(`sh -c ${Q} githa-admin create 'it'\\''s' 'a'\\!'b'`);
  });

  it('stamps are UTC to the second', () => {
    expect(trashStamp(new Date('2026-12-06T07:47:00.123Z'))).toBe('20261206T074700Z');
  });
});

describe('hostile names are refused before anything is sent', () => {
  const hostile = [
    '..',
    '../x.git',
    'a/../../etc.git',
    '/abs.git',
    '/etc/passwd',
    '-x.git',
    '--upload-pack=touch x',
    "it's.git",
    'a"b.git',
    '$(touch pwned).git',
    '`touch pwned`.git',
    'a;touch pwned.git',
    'a|b.git',
    'a&b.git',
    'a b.git',
    'a\nb.git',
    'a\0b.git',
    '\u202Egit.exe',
    'cafe\u0301.git',
    'a/.git/b',
    'a.git/b.git',
    'a//b.git',
    'team/app', // not canonical: githa always sends team/app.git
    '',
    `${'a/'.repeat(120)}x.git`,
    `${'x'.repeat(300)}.git`,
  ];
  it.each(hostile.map((n) => [JSON.stringify(n), n]))('%s', async (_shown, name) => {
    const { admin, calls } = recording({ code: 0, stdout: 'created' });
    await expect(admin.create(name)).rejects.toBeInstanceOf(InvalidRepositoryNameError);
    await expect(admin.trash(name, '20261206T074700Z')).rejects.toBeInstanceOf(InvalidRepositoryNameError);
    await expect(admin.restore(name)).rejects.toBeInstanceOf(InvalidRepositoryNameError);
    await expect(admin.rename('ok.git', name)).rejects.toBeInstanceOf(InvalidRepositoryNameError);
    await expect(admin.rename(name, 'ok.git')).rejects.toBeInstanceOf(InvalidRepositoryNameError);
    await expect(admin.purge('20261206T074700Z', name)).rejects.toBeInstanceOf(InvalidRepositoryNameError);
    expect(calls).toEqual([]);
  });

  it('a stamp, a description or a root that is not the expected shape', async () => {
    const { admin, calls } = recording();
    await expect(admin.trash('a.git', '2026-12-06; touch x')).rejects.toThrow(/invalid trash stamp/);
    await expect(admin.purge('$(id)')).rejects.toThrow(/invalid trash stamp/);
    await expect(admin.create('a.git', { description: 'two\nlines' })).rejects.toThrow(/invalid description/);
    expect(calls).toEqual([]);
    for (const root of ['srv/git', '/~/git', '/srv/../etc', '/srv//git', '/srv/git\n']) {
      expect(() => new SshRepositoryAdmin({ backend: 'b1', root, repositories: REPOS, exec: async () => ({ code: 0, stdout: '', stderr: '' }) })).toThrow(/absolute path/);
    }
  });
});

describe('answers', () => {
  it('a listing: X.git, X and X/.git are one canonical name; names that fail the rule are invalid', () => {
    const listing = parseListing('repo team/app.git\nrepo plain\nrepo work/.git\nrepo plain.git\nrepo caf\u0065\u0301\nrepo a b\nrepo x?y/z\n');
    expect(listing).toEqual({ repositories: ['plain.git', 'team/app.git', 'work.git'], invalid: ['cafe\u0301', 'a b', 'x?y/z'] });
    expect(() => parseListing('repo a.git\nrm -rf /\n')).toThrow(/unexpected line/);
  });

  it('trash entries, oldest first', () => {
    expect(parseTrash('trash 20261207T000000Z b/.git\ntrash 20261206T000000Z a.git\ntrash 20261206T000000Z bad name\n', 'trash')).toEqual([
      { stamp: '20261206T000000Z', repo: 'a.git' },
      { stamp: '20261207T000000Z', repo: 'b.git' },
    ]);
    expect(() => parseTrash('trash yesterday a.git\n', 'trash')).toThrow(/unexpected line/);
  });

  it('exit statuses map to results; anything else is a BackendAdminError with the first line of stderr', async () => {
    expect(await recording({ code: 4, stdout: 'exists\n' }).admin.create('a.git')).toBe('exists');
    expect(await recording({ code: 3, stdout: 'absent\n' }).admin.trash('a.git', '20261206T074700Z')).toBe('absent');
    expect(await recording({ code: 4, stdout: 'exists 20261206T074700Z\n' }).admin.restore('a.git')).toEqual({ status: 'exists', stamp: '20261206T074700Z' });
    expect(await recording({ code: 3, stdout: 'absent\n' }).admin.restore('a.git')).toEqual({ status: 'absent' });
    expect(await recording({ code: 3, stdout: 'absent\n' }).admin.rename('a.git', 'b.git')).toBe('absent');
    const failed = recording({ code: 2, stdout: '', stderr: 'githa-admin: refused path: x\nmore\n' }).admin.list();
    await expect(failed).rejects.toBeInstanceOf(BackendAdminError);
    await expect(failed).rejects.toThrow(/list failed \(exit 2\): githa-admin: refused path: x$/);
    // An exit status without the program's word is another command's failure.
    await expect(recording({ code: 3, stdout: '' }).admin.trash('a.git', '20261206T074700Z')).rejects.toBeInstanceOf(BackendAdminError);
    await expect(recording({ code: null, stdout: '' }).admin.list()).rejects.toThrow(/no exit status/);
  });
});

describe('the program under a local sh, as the backend runs it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'githa-admin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** The command line as the backend's login shell runs it (`$SHELL -c "<command>"`). */
  const local: AdminExec = async (command) => {
    try {
      const { stdout, stderr } = await run('sh', ['-c', command], { cwd: dir });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const root = join(dir, 'root');
  const admin = new SshRepositoryAdmin({ backend: 'b1', root, repositories: { ...REPOS, gitConfig: { 'http.receivepack': 'true', 'x.y': "it's $(touch pwned) `id`" } }, exec: local });

  it('creates, lists, renames, trashes, restores and purges', async () => {
    await run('mkdir', ['-p', root]);
    expect(await admin.create('team/app.git', { description: 'The "app" $(id)' })).toBe('created');
    expect(await admin.create('team/app.git')).toBe('exists');
    expect(readFileSync(join(root, 'team/app.git/description'), 'utf8')).toBe('The "app" $(id)\n');
    expect((await run('git', ['--git-dir', join(root, 'team/app.git'), 'config', 'x.y'])).stdout).toBe("it's $(touch pwned) `id`\n");
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
    await run('git', ['init', '-q', join(root, 'work')]);
    await run('git', ['init', '-q', join(root, 'odd.git')]);
    expect(await admin.list()).toEqual({ repositories: ['odd.git', 'team/app.git', 'work.git'], invalid: [] });
    expect(await admin.rename('odd.git', 'team/odd.git')).toBe('renamed');
    expect(existsSync(join(root, 'team/odd.git/.git/HEAD'))).toBe(true);
    expect(await admin.trash('team/odd.git', '20261206T074600Z')).toBe('trashed');
    expect(await admin.rename('work.git', 'team/work.git')).toBe('renamed');
    expect(existsSync(join(root, 'team/work/.git/HEAD'))).toBe(true);
    expect(await admin.rename('work.git', 'x.git')).toBe('absent');
    expect(await admin.rename('team/work.git', 'team/app.git')).toBe('exists');
    expect(await admin.trash('team/work.git', '20261206T074700Z')).toBe('trashed');
    expect(await admin.trash('team/work.git', '20261206T074700Z')).toBe('absent');
    expect(await admin.list()).toEqual({ repositories: ['team/app.git'], invalid: [] });
    expect(await admin.trashed()).toEqual([
      { stamp: '20261206T074600Z', repo: 'team/odd.git' },
      { stamp: '20261206T074700Z', repo: 'team/work.git' },
    ]);
    expect(await admin.restore('team/work.git')).toEqual({ status: 'restored', stamp: '20261206T074700Z' });
    expect(await admin.restore('team/work.git')).toEqual({ status: 'absent' });
    expect(await admin.trash('team/app.git', '20261206T074701Z')).toBe('trashed');
    // team/work.git went back: its (now empty) stamp directory is gone; only team/odd.git is older.
    expect(await admin.purge('20261206T074701Z')).toEqual([{ stamp: '20261206T074600Z', repo: 'team/odd.git' }]);
    expect(existsSync(join(root, '.githa-trash/20261206T074700Z'))).toBe(false);
    expect(await admin.purge('20261206T074702Z', 'team/app.git')).toEqual([{ stamp: '20261206T074701Z', repo: 'team/app.git' }]);
    expect(await admin.trashed()).toEqual([]);
  });

  it('purge never follows a symbolic link out of the trash directory', async () => {
    const outside = join(dir, 'outside');
    await run('git', ['init', '-q', '--bare', join(outside, 'app.git')]);
    await run('mkdir', ['-p', join(root, '.githa-trash/20261206T074800Z')]);
    // Planted by someone with the account: a trash entry whose directory links elsewhere.
    await run('ln', ['-s', outside, join(root, '.githa-trash/20261206T074800Z/team')]);
    await expect(admin.purge('20261206T074900Z', 'team/app.git')).rejects.toThrow(/refused: a symbolic link in \.githa-trash\/20261206T074800Z\/team\/app\.git/);
    expect(existsSync(join(outside, 'app.git/HEAD'))).toBe(true);
    rmSync(join(root, '.githa-trash/20261206T074800Z'), { recursive: true });
  });

  it('re-checks its arguments: sent around githa, a hostile path is refused (exit 2)', async () => {
    for (const bad of ['../escape.git', '/abs.git', '-x.git', 'a/./b.git', 'a\nb.git']) {
      const r = await local(adminCommand('trash', [root, '.githa-trash', bad, '20261206T074700Z']));
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/^githa-admin: refused/)]);
    }
    expect((await local(adminCommand('list', ['relative', '.t']))).code).toBe(2);
    expect((await local(adminCommand('list', [root, '..']))).code).toBe(2);
    expect((await local(adminCommand('purge', [root, '.t', '2026']))).code).toBe(2);
    expect((await local(adminCommand('eval', [root, 'touch pwned']))).code).toBe(2);
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
  });
});

describe('configuration', () => {
  const base = { redis: { url: 'redis://127.0.0.1:6379' }, proxyId: 'p' };
  const ssh = { backendKey: '/k', backendKnownHosts: '/kh' };
  it('admin needs githa\'s backend key and known_hosts, and an absolute root', () => {
    expect(() => buildConfig({ ...base, backends: [{ id: 'b1', http: 'http://h/git/', admin: 'ssh://git@h/srv/git' }] }, {})).toThrow(ConfigError);
    expect(() => buildConfig({ ...base, backends: [{ id: 'b1', http: 'http://h/git/', admin: 'ssh://git@h/srv/git' }] }, {})).toThrow(/backends\.0\.admin: admin runs over SSH: it needs ssh\.backendKey and ssh\.backendKnownHosts/);
    expect(() => buildConfig({ ...base, ssh, backends: [{ id: 'b1', http: 'http://h/git/', admin: 'ssh://git@h/~/git' }] }, {})).toThrow(/backends\.0\.admin: expected ssh:\/\/user@host\[:port\]\/absolute\/root/);
    expect(() => buildConfig({ ...base, ssh, backends: [{ id: 'b1', ssh: 'ssh://git@h/~/git', admin: true }] }, {})).toThrow(/admin: true needs an absolute path/);
    expect(buildConfig({ ...base, ssh, backends: [{ id: 'b1', ssh: 'ssh://git@h:2222/srv/git', admin: true }] }, {}).backends[0]!.admin).toBe(true);
  });
});
