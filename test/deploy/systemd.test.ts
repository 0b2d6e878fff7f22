/**
 * deploy/systemd/githa.service as far as a machine without a running systemd
 * allows: `systemd-analyze verify`, then the documented install steps
 * (install-githa.sh) into a temporary /etc/githa with a system user of their
 * own, the unit's credentials laid out as systemd lays them out, and the
 * unit's ExecStart run as the unit's User=/Group= (setpriv): githa must read
 * its config, authorized_keys and host key and serve (Redis is a real
 * redis-server), and every file its config names must be readable by that
 * user and by no other. A unit whose user cannot read its own config (the old
 * DynamicUser with a root-only /etc/githa) fails here.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { buildConfig } from '../../src/config/load.js';
import { DevRedisImpl } from '../../src/demo/redis.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');
const SYSTEMD = join(REPO, 'deploy/systemd');
const tmp = mkdtempSync(join(tmpdir(), 'githa-unit-test-'));
// Like / and /etc: every user may pass through (mkdtemp makes it 0700).
chmodSync(tmp, 0o755);
const etc = join(tmp, 'etc/githa');
const unitDir = join(tmp, 'systemd');
const src = join(tmp, 'src');
// A user of this run's own, created by the install script (as `githa` would be).
const user = `githa-t${process.pid}`;
const redis = new DevRedisImpl({ dir: join(tmp, 'redis'), aof: false });

/** `Key=value` lines of a unit file (every value, in order). */
function unitValues(text: string, key: string): string[] {
  return [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);
}

afterAll(async () => {
  await redis.stop().catch(() => {});
  await run('userdel', [user]).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

describe('deploy/systemd/githa.service', () => {
  it('systemd-analyze verify accepts the unit (or the test says why it cannot run)', async () => {
    const which = await run('sh', ['-c', 'command -v systemd-analyze']).catch(() => undefined);
    if (!which) {
      console.warn('systemd-analyze not found on this machine: unit NOT verified by systemd; the permission test below still runs');
      expect(readFileSync(join(SYSTEMD, 'githa.service'), 'utf8')).toMatch(/^\[Service\]$/m);
      return;
    }
    const { stdout, stderr } = await run('systemd-analyze', ['verify', join(SYSTEMD, 'githa.service')]);
    expect(`${stdout}${stderr}`.trim()).toBe('');
  });

  it('runs as the fixed user the install script creates, with no DynamicUser', () => {
    const unit = readFileSync(join(SYSTEMD, 'githa.service'), 'utf8');
    expect(unitValues(unit, 'User')).toEqual(['githa']);
    expect(unitValues(unit, 'Group')).toEqual(['githa']);
    expect(unitValues(unit, 'DynamicUser')).toEqual([]);
    expect(readFileSync(join(SYSTEMD, 'install-githa.sh'), 'utf8')).toContain('USER_NAME="${GITHA_USER:-githa}"');
  });

  describe('installed as documented, its ExecStart run as its user', () => {
    let installed = '';
    let configPath = '';
    let cred = '';

    beforeAll(async () => {
      await redis.start();
      mkdirSync(src, { recursive: true });
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(src, 'ssh_host_ed25519_key')]);
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(src, 'backend_key')]);
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'alice')]);
      writeFileSync(join(src, 'authorized_keys'), `environment="GITHA_USER=alice" ${readFileSync(join(tmp, 'alice.pub'), 'utf8')}`);
      writeFileSync(join(src, 'backend_known_hosts'), `10.0.0.11 ${readFileSync(join(src, 'ssh_host_ed25519_key.pub'), 'utf8')}`);
      cred = join(tmp, 'run/credentials/githa.service');
      // The shipped config with this machine's paths, loopback ports and the test's Redis.
      const shipped = readFileSync(join(SYSTEMD, 'githa.yaml'), 'utf8').replaceAll('/etc/githa/', `${etc}/`).replaceAll('/run/credentials/githa.service/', `${cred}/`);
      const doc = parseYaml(shipped) as { listen: Record<string, unknown>; redis: Record<string, unknown> };
      // Every listener on a free local port; listen.proxyProtocolFrom (a list of balancers) stays as shipped.
      for (const k of Object.keys(doc.listen)) if (typeof doc.listen[k] === 'string') doc.listen[k] = '127.0.0.1:0';
      doc.redis = { url: redis.url };
      writeFileSync(join(src, 'githa.yaml'), stringify(doc));

      await run('bash', [join(SYSTEMD, 'install-githa.sh'), '--from', src, '--no-services'], {
        env: { ...process.env, GITHA_ETC: etc, GITHA_USER: user, GITHA_UNIT_DIR: unitDir },
      });
      installed = readFileSync(join(unitDir, 'githa.service'), 'utf8');
      expect(unitValues(installed, 'User')).toEqual([user]);

      // What systemd does for LoadCredential= (systemd.exec(5) "Credentials"):
      // it reads each source as root and puts a copy, readable by the
      // service's user only, under /run/credentials/<unit>/.
      mkdirSync(cred, { recursive: true });
      for (const d of [join(tmp, 'run'), join(tmp, 'run/credentials')]) chmodSync(d, 0o755);
      const { stdout: ids } = await run('id', ['-u', user]);
      const uid = Number(ids.trim());
      for (const line of unitValues(installed, 'LoadCredential')) {
        const [name, path] = line.split(':') as [string, string];
        copyFileSync(path, join(cred, name));
        chownSync(join(cred, name), uid, 0);
        chmodSync(join(cred, name), 0o400);
      }
      chownSync(cred, uid, 0);
      chmodSync(cred, 0o500);
      configPath = /--config (\S+)$/m.exec(unitValues(installed, 'ExecStart')[0]!)![1]!;
    });

    /** Runs a command as the unit's User= and Group= with their supplementary groups, as systemd does. */
    const asUnitUser = (argv: string[]): string[] => {
      const u = unitValues(installed, 'User')[0]!;
      const g = unitValues(installed, 'Group')[0]!;
      return ['--reuid', u, '--regid', g, '--init-groups', '--', ...argv];
    };

    it('the install script leaves /etc/githa readable by the unit’s user and by nobody else', async () => {
      expect(configPath).toBe(join(etc, 'githa.yaml'));
      const config = buildConfig(parseYaml(readFileSync(configPath, 'utf8')), {});
      const files = [configPath, config.ssh.authorizedKeys!, config.ssh.backendKnownHosts!, ...config.ssh.hostKeys!, config.ssh.backendKey!];
      for (const f of files) {
        await run('setpriv', asUnitUser(['cat', f])).catch((err: Error) => expect.fail(`${user} cannot read ${f}: ${err.message}`));
        const other = await run('setpriv', ['--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', '--', 'cat', f]).then(
          () => 'read',
          () => 'refused',
        );
        expect(other, `nobody reads ${f}`).toBe('refused');
      }
      // The secrets themselves stay root-only on disk; githa reads the credentials.
      for (const name of ['ssh_host_ed25519_key', 'backend_key']) {
        await expect(run('setpriv', asUnitUser(['cat', join(etc, name)]))).rejects.toThrow();
      }
      // githa cannot change its own configuration.
      await expect(run('setpriv', asUnitUser(['sh', '-c', `: >> '${configPath}'`]))).rejects.toThrow();
    });

    it('githa started by the unit’s ExecStart as its user reads everything and serves', async () => {
      // The unit runs /usr/bin/node (docs/deploy.md: Node.js 24 from a package that installs it there);
      // the test runs the node it runs on, so each runtime CI proves (.ci/run) starts githa as the unit.
      const execStart = unitValues(installed, 'ExecStart')[0]!;
      expect(execStart).toMatch(/^\/usr\/bin\/node \/opt\/githa\/dist\/cli\/main\.js /);
      const [exec, ...args] = execStart.replace('/usr/bin/node ', `${process.execPath} `).replace('/opt/githa/', `${REPO}/`).split(' ');
      const env: Record<string, string> = { PATH: '/usr/bin:/bin' };
      for (const e of unitValues(installed, 'Environment')) env[e.slice(0, e.indexOf('='))] = e.slice(e.indexOf('=') + 1);
      const child = spawn('setpriv', asUnitUser([exec!, ...args]), { env, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      let sawListening: () => void = () => {};
      const listeningLine = new Promise<string>((done) => (sawListening = () => done('listening')));
      const collect = (d: Buffer): void => {
        output += d.toString();
        if (/"msg":"githa listening"/.test(output)) sawListening();
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
      try {
        // Either githa says it is listening, or it exits (and the output says why).
        const listening = await Promise.race([
          listeningLine,
          exited.then((code) => `exited with ${code}: ${output}`),
          // A bound with the output to show, not a wait for anything.
          new Promise<string>((done) => setTimeout(() => done(`not listening after 45 s: ${output}`), 45_000).unref()),
        ]);
        expect(listening, output).toBe('listening');
        expect(output).not.toMatch(/EACCES|cannot read/);
        const line = output.split('\n').find((l) => l.includes('"msg":"githa listening"'))!;
        const { admin } = JSON.parse(line) as { admin: { port: number } };
        const ready = await fetch(`http://127.0.0.1:${admin.port}/readyz`);
        expect(ready.status).toBe(200);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    });
  });
});
