/**
 * deploy/systemd/git-backend-setup.sh on an existing Git host (docs/migrate.md
 * step 1): its add-key and enable-push steps run against a temporary home and
 * repository root (GIT_BACKEND_HOME, GIT_BACKEND_USER) with git's system and
 * global config in temporary files. githa's key is added next to the keys
 * already there, once however often the script runs; pushes over HTTP are
 * enabled in each repository's own config, which git http-backend honours,
 * and in no host-wide config.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SCRIPT = resolve(import.meta.dirname, '../../deploy/systemd/git-backend-setup.sh');
const tmp = mkdtempSync(join(tmpdir(), 'githa-backend-setup-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const home = join(tmp, 'home/git');
const systemConfig = join(tmp, 'gitconfig-system');
const globalConfig = join(tmp, 'gitconfig-global');
const SYSTEM_BEFORE = '[core]\n\tfsync = committed,reference\n';
writeFileSync(systemConfig, SYSTEM_BEFORE);
writeFileSync(globalConfig, '');
const env = {
  ...process.env,
  GIT_BACKEND_HOME: home,
  GIT_BACKEND_USER: userInfo().username,
  GIT_CONFIG_SYSTEM: systemConfig,
  GIT_CONFIG_GLOBAL: globalConfig,
};
const setup = (...args: string[]): Promise<{ stdout: string; stderr: string }> => run('bash', [SCRIPT, ...args], { env });

/** `git http-backend` as nginx runs it (no REMOTE_USER) asked for one repository's receive-pack advertisement: served or refused. */
async function receivePack(root: string, repo: string): Promise<'advertised' | 'refused' | string> {
  const { stdout } = await run('git', ['http-backend'], {
    env: { ...env, GIT_PROJECT_ROOT: root, GIT_HTTP_EXPORT_ALL: '', PATH_INFO: `/${repo}/info/refs`, REQUEST_METHOD: 'GET', QUERY_STRING: 'service=git-receive-pack' },
  });
  const headers = stdout.slice(0, stdout.indexOf('\r\n\r\n'));
  if (/^Status: 403/m.test(headers)) return 'refused';
  if (/^Content-Type: application\/x-git-receive-pack-advertisement$/m.test(headers)) return 'advertised';
  return headers;
}

describe('git-backend-setup.sh on an existing host', () => {
  it('adds githa’s key next to the existing ones, once after two runs', async () => {
    mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    const alice = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAliceAliceAliceAliceAliceAliceAliceAliceAlic alice@laptop';
    writeFileSync(join(home, '.ssh/authorized_keys'), `# direct users until they move to githa\n${alice}\n`, { mode: 0o600 });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'githa-backend', '-f', join(tmp, 'githa_backend_key')]);
    const githaKey = readFileSync(join(tmp, 'githa_backend_key.pub'), 'utf8').trim();
    const blob = githaKey.split(' ')[1]!;

    await setup('add-key', '--service-key', join(tmp, 'githa_backend_key.pub'));
    const once = readFileSync(join(home, '.ssh/authorized_keys'), 'utf8');
    await setup('add-key', '--service-key', join(tmp, 'githa_backend_key.pub'));
    const twice = readFileSync(join(home, '.ssh/authorized_keys'), 'utf8');

    expect(twice).toBe(once);
    const lines = twice.trimEnd().split('\n');
    expect(lines).toContain(alice);
    expect(lines).toContain('# direct users until they move to githa');
    expect(lines.filter((l) => l.includes(blob))).toEqual([`restrict ${githaKey}`]);
    expect(statSync(join(home, '.ssh/authorized_keys')).mode & 0o777).toBe(0o600);
  });

  it('a line that already holds githa’s key without restrictions is replaced, not doubled', async () => {
    const githaKey = readFileSync(join(tmp, 'githa_backend_key.pub'), 'utf8').trim();
    writeFileSync(join(home, '.ssh/authorized_keys'), `${githaKey}\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABBob bob\n`);
    await setup('add-key', '--service-key', join(tmp, 'githa_backend_key.pub'));
    expect(readFileSync(join(home, '.ssh/authorized_keys'), 'utf8')).toBe(`ssh-rsa AAAAB3NzaC1yc2EAAAADAQABBob bob\nrestrict ${githaKey}\n`);
  });

  it('enables receive-pack in each bare repository under --root or named, in no system or global config', async () => {
    const root = join(tmp, 'srv/git');
    for (const repo of ['team/app.git', 'team/lib.git', 'other/tool.git']) await run('git', ['init', '-q', '--bare', join(root, repo)], { env });
    await run('git', ['init', '-q', join(root, 'checkout')], { env });
    const outside = join(tmp, 'elsewhere/private.git');
    await run('git', ['init', '-q', '--bare', outside], { env });

    expect(await receivePack(root, 'team/app.git')).toBe('refused');
    await setup('enable-push', join(root, 'other/tool.git'));
    expect(await receivePack(root, 'other/tool.git')).toBe('advertised');
    expect(await receivePack(root, 'team/app.git')).toBe('refused');

    await setup('enable-push', '--root', join(root, 'team'));
    for (const repo of ['team/app.git', 'team/lib.git', 'other/tool.git']) {
      const { stdout } = await run('git', ['config', '--file', join(root, repo, 'config'), 'http.receivepack'], { env });
      expect(stdout.trim(), repo).toBe('true');
      expect(await receivePack(root, repo), repo).toBe('advertised');
    }
    // Nothing else: not the non-bare checkout, not a repository outside the root, not the host.
    await expect(run('git', ['config', '--file', join(root, 'checkout/.git/config'), 'http.receivepack'], { env })).rejects.toThrow();
    await expect(run('git', ['config', '--file', join(outside, 'config'), 'http.receivepack'], { env })).rejects.toThrow();
    expect(readFileSync(systemConfig, 'utf8')).toBe(SYSTEM_BEFORE);
    expect(readFileSync(globalConfig, 'utf8')).toBe('');
  });

  it('refuses a path that is not a bare repository', async () => {
    await expect(setup('enable-push', join(tmp, 'srv/git/checkout'))).rejects.toThrow(/not a Git repository/);
    await expect(setup('enable-push', join(tmp, 'srv/git/checkout/.git'))).rejects.toThrow(/not a bare repository/);
  });

  it('the full setup sets nothing about pushes host-wide', () => {
    const script = readFileSync(SCRIPT, 'utf8');
    expect(script).not.toMatch(/^[^#]*git config --system http\.receivepack/m);
    expect(script).not.toMatch(/^[^#]*>\s*(\/home\/git|"\$GIT_HOME")\/\.ssh\/authorized_keys/m);
  });
});
