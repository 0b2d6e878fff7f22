/**
 * `githa demo` (what `npm start` runs), as a person would use it: start it,
 * clone the sample repository over HTTP, SSH and git://, push, read the state
 * with the printed redis-cli command, press Ctrl-C, and find nothing left
 * running; start it again on the same `--dir` and find the pushes still there.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { GitClient } from '../support/git.js';
import { waitFor } from '../support/state.js';

const MAIN = resolve(import.meta.dirname, '../../dist/cli/main.js');
const run = promisify(execFile);
const base = mkdtempSync(join(tmpdir(), 'githa-demo-test-'));
const dir = join(base, 'state');

afterAll(() => rmSync(base, { recursive: true, force: true }));

interface Demo {
  pid: number;
  out: () => string;
  exited: Promise<number | null>;
}

/** Starts `githa demo --dir <dir> [--json]` in its own process group (as a terminal would); resolves once it printed its facts. */
async function startDemo(json: boolean): Promise<Demo> {
  const proc = spawn(process.execPath, [MAIN, 'demo', '--dir', dir, ...(json ? ['--json'] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GITHA_CONFIG: '', GITHA_REDIS_URL: '' },
    detached: true,
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(
    'the demo to print its facts',
    () => {
      if (gone) throw new Error(`demo exited early:\n${out}\n${err}`);
      return json ? out.trimEnd().endsWith('}') : out.includes('Press Ctrl-C');
    },
    45_000,
  ).catch((e: unknown) => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      // exited already
    }
    throw new Error(`${(e as Error).message}\nstdout:\n${out}\nstderr:\n${err}`);
  });
  return { pid: proc.pid!, out: () => out, exited };
}

/** Every process whose command line names the demo directory (servers, the watchdog). */
function processesUsing(path: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(path)) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Ctrl-C: SIGINT to the foreground process group; the demo exits 0 and leaves nothing running. */
async function ctrlC(demo: Demo): Promise<void> {
  expect(processesUsing(dir).length).toBeGreaterThanOrEqual(10); // redis, 3 × (lighttpd, sshd, git daemon), watchdog
  process.kill(-demo.pid, 'SIGINT');
  expect(await demo.exited).toBe(0);
  await waitFor('no process left using the demo directory', () => processesUsing(dir).length === 0 || undefined, 10_000).catch(() => {
    throw new Error(`still running:\n${processesUsing(dir).join('\n')}`);
  });
}

function client(sshCommand?: string): GitClient {
  return GitClient.create({
    baseDir: join(base, 'clients'),
    ...(sshCommand ? { env: { GIT_SSH_COMMAND: `${sshCommand} -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes` } } : {}),
  });
}

describe('githa demo', () => {
  it('clones over HTTP, SSH and git://, takes pushes, shows its state in redis-cli, stops on Ctrl-C and keeps --dir between runs', async () => {
    const first = await startDemo(true);
    const facts = JSON.parse(first.out()) as {
      clone: { http: string; ssh: string; git: string };
      sshCommand: string;
      redis: string;
      status: string;
      metrics: string;
      health: string;
      dir: string;
    };
    expect(facts.dir).toBe(dir);
    const git = client(facts.sshCommand);
    const clones = {
      http: await git.clone(facts.clone.http),
      ssh: await git.clone(facts.clone.ssh),
      git: await git.clone(facts.clone.git),
    };
    const seeded = await git.revParse(clones.http, 'HEAD');
    for (const c of Object.values(clones)) expect(await git.revParse(c, 'HEAD')).toBe(seeded);
    const overHttp = await git.commit(clones.http, { 'http.txt': 'over http\n' }, 'over HTTP');
    await git.push(clones.http, facts.clone.http, ['HEAD:refs/heads/http']);
    const overSsh = await git.commit(clones.ssh, { 'ssh.txt': 'over ssh\n' }, 'over SSH');
    await git.push(clones.ssh, facts.clone.ssh, ['HEAD:refs/heads/ssh']);
    expect(await git.lsRemote(facts.clone.git)).toMatchObject({ 'refs/heads/http': overHttp, 'refs/heads/ssh': overSsh });

    // The printed redis-cli command, as a person pastes it into a shell: every backend at the same version once
    // replication copied the last push to the backend its write quorum left out (README: "within milliseconds").
    const versions = await waitFor('every backend at the same version', async () => {
      const { stdout } = await run('sh', ['-c', facts.redis]);
      const lines = stdout.trim().split('\n');
      const v: Record<string, number> = Object.fromEntries(lines.flatMap((l, i) => (i % 2 === 0 ? [[l, Number(lines[i + 1])]] : [])));
      return Object.keys(v).length === 3 && new Set(Object.values(v)).size === 1 ? v : undefined;
    });
    expect(Object.keys(versions).sort()).toEqual(['b1', 'b2', 'b3']);
    expect(Object.values(versions)[0]).toBeGreaterThanOrEqual(3); // seed, HTTP push, SSH push

    for (const url of [facts.health, facts.status, facts.metrics]) expect((await fetch(url)).status, url).toBe(200);
    expect(await (await fetch(facts.metrics)).text()).toContain('githa_');
    await ctrlC(first);

    // Again on the same directory, for a person: the URLs on the terminal, the pushes still there.
    const second = await startDemo(false);
    const text = second.out();
    for (const label of ['clone (HTTP):', 'clone (SSH):', 'clone (git://):', 'cluster state:', 'status page:', 'redis-cli -p']) expect(text).toContain(label);
    const httpUrl = /clone \(HTTP\):\s+git clone (\S+)/.exec(text)![1]!;
    expect(await client().lsRemote(httpUrl)).toMatchObject({ 'refs/heads/http': overHttp, 'refs/heads/ssh': overSsh });
    const redisCommand = /cluster state:\s+(redis-cli .*)$/m.exec(text)![1]!;
    const again = (await run('sh', ['-c', redisCommand])).stdout.trim().split('\n');
    expect(Object.fromEntries(again.flatMap((l, i) => (i % 2 === 0 ? [[l, Number(again[i + 1])]] : [])))).toEqual(versions);
    await ctrlC(second);
  });
});
