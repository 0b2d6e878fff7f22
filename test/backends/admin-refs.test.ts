/**
 * The batched ref listing of the admin account (`githa-admin refs`,
 * src/backends/admin.ts parseRefs; docs/architecture.md "Adoption in
 * batches"): names go on stdin, never on the command line; the answer is
 * parsed strictly; the program itself run with sh against real repositories
 * (packed and loose refs, tags, symbolic refs, a hideRefs config).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRefs, SshRepositoryAdmin, type AdminExec } from '../../src/backends/admin.js';
import { ADMIN_SCRIPT } from '../../src/backends/admin-script.js';
import { sqQuote } from '../../src/backends/ssh-url.js';
import { BackendAdminError, InvalidRepositoryNameError } from '../../src/errors.js';

const run = promisify(execFile);
const A = '1'.repeat(40);
const B = '2'.repeat(40);

describe('parseRefs', () => {
  it('reads refs, absent and ask answers in order', () => {
    const out = `repo a.git\nref ${A} refs/heads/main\nref ${B} refs/tags/v 1\nabsent b.git\nask c.git\nrepo d.git\nrepo e.git\nref ${A} refs/x\nask e.git\n`;
    const got = parseRefs(out, ['a.git', 'b.git', 'c.git', 'd.git', 'e.git']);
    expect(got.get('a.git')).toEqual([
      { name: 'refs/heads/main', oid: A },
      { name: 'refs/tags/v 1', oid: B },
    ]);
    expect(got.get('b.git')).toBeNull();
    expect(got.has('c.git') && got.get('c.git') === undefined).toBe(true);
    expect(got.get('d.git')).toEqual([]);
    // for-each-ref failed after printing: the refs are dropped, the protocol asked instead.
    expect(got.has('e.git') && got.get('e.git') === undefined).toBe(true);
  });

  it.each([
    ['an unrequested name', `repo x.git\n`, ['a.git']],
    ['names out of order', `absent b.git\nabsent a.git\n`, ['a.git', 'b.git']],
    ['a missing answer', `absent a.git\n`, ['a.git', 'b.git']],
    ['a ref before any repo', `ref ${A} refs/heads/main\n`, []],
    ['a ref after absent', `absent a.git\nref ${A} refs/heads/main\n`, ['a.git']],
    ['a short oid', `repo a.git\nref 1234 refs/heads/main\n`, ['a.git']],
    ['HEAD', `repo a.git\nref ${A} HEAD\n`, ['a.git']],
    ['an unknown word', `repo a.git\npeeled ${A} refs/tags/v\n`, ['a.git']],
  ])('refuses %s', (_what, out, names) => {
    expect(() => parseRefs(out, names)).toThrow(/unexpected|no answer/);
  });
});

describe('SshRepositoryAdmin.refs', () => {
  it('sends the names on stdin, one a line, with nothing but the root on the command line', async () => {
    const calls: Array<{ command: string; input: string | undefined }> = [];
    const exec: AdminExec = async (command, _signal, input) => {
      calls.push({ command, input });
      return { code: 0, stdout: 'absent a.git\nabsent team/b.git\n', stderr: '' };
    };
    const admin = new SshRepositoryAdmin({ backend: 'b1', root: '/srv/git', repositories: { trashDir: '.t', initialBranch: 'main', gitConfig: {} }, exec });
    expect([...(await admin.refs(['a.git', 'team/b.git']))]).toEqual([
      ['a.git', null],
      ['team/b.git', null],
    ]);
    expect(calls).toEqual([{ command: `sh -c ${sqQuote(ADMIN_SCRIPT)} githa-admin refs '/srv/git'`, input: 'a.git\nteam/b.git\n' }]);
    await expect(admin.refs(['a.git', 'x\n../y.git'])).rejects.toThrow(InvalidRepositoryNameError);
    expect(calls).toHaveLength(1);
  });

  it('a broken answer is a BackendAdminError', async () => {
    const exec: AdminExec = async () => ({ code: 0, stdout: 'repo other.git\n', stderr: '' });
    const admin = new SshRepositoryAdmin({ backend: 'b1', root: '/srv/git', repositories: { trashDir: '.t', initialBranch: 'main', gitConfig: {} }, exec });
    await expect(admin.refs(['a.git'])).rejects.toThrow(BackendAdminError);
  });
});

describe('the program run with sh', () => {
  const dir = mkdtempSync(join(tmpdir(), 'githa-admin-refs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const git = async (...args: string[]): Promise<string> =>
    (await run('git', args, { env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: dir, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } })).stdout.trim();
  const refsOf = (stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const p = spawn('sh', ['-c', ADMIN_SCRIPT, 'githa-admin', 'refs', dir]);
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => resolve({ code, stdout, stderr }));
      p.stdin.end(stdin);
    });

  it('lists packed and loose refs, tags and symbolic refs as the protocol does (no HEAD, no peeled lines, no dangling ref)', async () => {
    const a = join(dir, 'team', 'a.git');
    await git('init', '--bare', '--quiet', '--initial-branch=main', a);
    const tree = await git('--git-dir', a, 'hash-object', '-t', 'tree', '-w', '/dev/null');
    const one = await git('--git-dir', a, 'commit-tree', tree, '-m', 'one');
    await git('--git-dir', a, 'update-ref', 'refs/heads/main', one);
    await git('--git-dir', a, 'tag', '-a', 'v1', '-m', 'v1', one);
    await git('--git-dir', a, 'pack-refs', '--all');
    const two = await git('--git-dir', a, 'commit-tree', tree, '-p', one, '-m', 'two');
    await git('--git-dir', a, 'update-ref', 'refs/heads/main', two);
    await git('--git-dir', a, 'symbolic-ref', 'refs/heads/alias', 'refs/heads/main');
    await git('--git-dir', a, 'symbolic-ref', 'refs/heads/dangling', 'refs/heads/none');
    const tag = await git('--git-dir', a, 'rev-parse', 'refs/tags/v1');
    const h = join(dir, 'h');
    await git('init', '--bare', '--quiet', h);
    await git('--git-dir', h, 'config', 'transfer.hideRefs', 'refs/tags');

    const r = await refsOf('team/a.git\nh.git\nnone.git\n');
    expect(r.code, r.stderr).toBe(0);
    const got = parseRefs(r.stdout, ['team/a.git', 'h.git', 'none.git']);
    expect(got.get('team/a.git')).toEqual([
      { name: 'refs/heads/alias', oid: two },
      { name: 'refs/heads/main', oid: two },
      { name: 'refs/tags/v1', oid: tag },
    ]);
    expect(got.has('h.git') && got.get('h.git') === undefined).toBe(true);
    expect(got.get('none.git')).toBeNull();
  });

  it('refuses a name that is not one, on stdin too', async () => {
    const r = await refsOf('../etc.git\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refused path/);
  });
});
