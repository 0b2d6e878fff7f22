/**
 * deploy/backend/githa-gate, the forced command that restricts githa's key on
 * a backend (docs/operations.md "The admin account"), run locally as sshd
 * runs it: SSH_ORIGINAL_COMMAND holds what the client sent. The same through
 * a real sshd: test/integration/backend-admin.test.ts.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adminCommand, SshRepositoryAdmin, type AdminExec } from '../../src/backends/admin.js';

const GATE = resolve(import.meta.dirname, '../../deploy/backend/githa-gate');
const dir = mkdtempSync(join(tmpdir(), 'githa-gate-'));
const gateDir = join(dir, 'gate');
const root = join(dir, 'root');
mkdirSync(join(gateDir, 'git-shell-commands'), { recursive: true });
mkdirSync(root);
copyFileSync(resolve(import.meta.dirname, '../../deploy/backend/githa-admin'), join(gateDir, 'git-shell-commands/githa-admin'));

/** The gate as sshd runs a forced command: the sent command in SSH_ORIGINAL_COMMAND. */
function gate(command: string, pinned?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = execFile(GATE, pinned === undefined ? [gateDir] : [gateDir, pinned], { env: { PATH: process.env.PATH, HOME: dir, SSH_ORIGINAL_COMMAND: command } }, (err, stdout, stderr) =>
      res({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
    // A flush-pkt: an upload-pack ends after its advertisement (the client wants nothing).
    child.stdin?.on('error', () => {}); // a refused command never reads it
    child.stdin?.end('0000');
  });
}

describe('githa-gate', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const exec: AdminExec = (command) => gate(command);
  const admin = new SshRepositoryAdmin({ backend: 'b1', root, repositories: { trashDir: '.githa-trash', initialBranch: 'main', gitConfig: { 'http.receivepack': 'true' } }, exec });

  it("runs githa's admin commands with the installed program", async () => {
    expect(await admin.create('team/app.git', { description: "it's $(touch pwned) !" })).toBe('created');
    expect(readFileSync(join(root, 'team/app.git/description'), 'utf8')).toBe("it's $(touch pwned) !\n");
    expect(await admin.list()).toEqual({ repositories: ['team/app.git'], invalid: [] });
    expect(await admin.trash('team/app.git', '20261206T074700Z')).toBe('trashed');
    expect(await admin.restore('team/app.git')).toEqual({ status: 'restored', stamp: '20261206T074700Z' });
    expect(existsSync(join(gateDir, 'pwned'))).toBe(false);
  });

  it('never runs the program it is sent', async () => {
    const marker = join(dir, 'sent-script-ran');
    const r = await gate(`sh -c 'touch ${marker}' githa-admin list '${root}' '.githa-trash'`);
    expect(r).toMatchObject({ code: 0, stdout: 'repo team/app.git\n' });
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses anything else', async () => {
    const marker = join(dir, 'refused-ran');
    for (const command of [`touch ${marker}`, '', `sh -c 'touch ${marker}'`, `sh -c 'x' touch ${marker}`, `git-upload-pack; touch ${marker}`, `bash -c 'touch ${marker}' githa-admin list`]) {
      const r = await gate(command);
      expect([command, r.code, r.stderr]).toEqual([command, 1, expect.stringMatching(/^githa-gate: /)]);
    }
    expect(existsSync(marker)).toBe(false);
  });

  it("the installed program's own checks refuse a hostile argument sent around githa", async () => {
    const r = await gate(adminCommand('trash', [root, '.githa-trash', '../x.git', '20261206T074700Z']));
    expect([r.code, r.stderr]).toEqual([2, 'githa-admin: refused path: ../x.git\n']);
    const s = await gate(adminCommand('list', [root, '$(touch pwned)']));
    expect(s.code).toBe(2);
    expect(existsSync(join(gateDir, 'pwned'))).toBe(false);
  });

  it('passes Git services to git-shell', async () => {
    const r = await gate(`git-receive-pack '${join(root, 'team/app.git')}'`);
    // An empty repository's advertisement: capabilities^{} and a flush.
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{4}0{40} capabilities\^\{\}\0report-status/);
  });

  it('with ROOT, serves and manages only below that root', async () => {
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    // githa's own commands for the pinned root pass.
    expect(await gate(adminCommand('list', [root, '.githa-trash']), root)).toMatchObject({ code: 0, stdout: 'repo team/app.git\n' });
    expect((await gate(`git-upload-pack '${join(root, 'team/app.git')}'`, root)).code).toBe(0);
    // Another root, a path outside it, or a way out of it: refused before anything runs.
    for (const command of [
      adminCommand('list', [elsewhere, '.githa-trash']),
      adminCommand('purge', [dir, '.githa-trash', '20991231T000000Z']),
      `sh -c 'x' githa-admin 'list' '${root}/../elsewhere' '.githa-trash'`,
      `sh -c 'x' githa-admin 'li$(x)st' '${root}' '.githa-trash'`,
      `git-upload-pack '${join(elsewhere, 'x.git')}'`,
      `git-upload-pack '${root}/../elsewhere/x.git'`,
      `git-receive-pack '${root}'`,
    ]) {
      const r = await gate(command, root);
      expect([command, r.code, r.stderr]).toEqual([command, 1, expect.stringMatching(/^githa-gate: /)]);
    }
  });
});
