/**
 * What every operator command does with its output streams, against real git,
 * Redis, stock backends and the CLI as a real process (docs/cli.md "Output"):
 *
 * - a reader that closes its end of the pipe early (`githa status | head -1`)
 *   gets no error and no stack trace; the command still does all its work
 *   (a mutating one does not stop after its first line);
 * - `githa recover` through a pipe prints plain progress lines and human log
 *   lines on stderr, never pino JSON; on a terminal it draws a progress bar;
 * - Redis refusing connections, or accepting them and never answering (a
 *   SIGSTOPped redis-server), fails within redis.commandTimeoutMs with a clear
 *   message and exit 2.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { gitDir } from '../support/backend-refs.js';
import { githaCli } from './run.js';
import { githaPty } from './pty.js';
import { useCliCluster } from './setup.js';

const MAIN = resolve(import.meta.dirname, '../../dist/cli/main.js');
const { cluster, redis, synced } = useCliCluster();

/** A stack trace's frame line, or pino's JSON line. */
const STACK = /^\s+at .+\(?.*:\d+:\d+\)?$/m;
const PINO = /\{"level"/;

/**
 * `githa <args…>` with its stdout a pipe whose reading end is closed before
 * the process writes anything (as `| head` does once it has read enough):
 * every write githa makes to stdout fails with EPIPE.
 */
function closedPipe(configPath: string, args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, GITHA_CONFIG: '' };
  delete env.GITHA_REDIS_URL;
  const child = spawn(process.execPath, [MAIN, ...args, '--config', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((res) => child.on('close', (code, signal) => res({ code, signal, stderr })));
}

/** Deletes every key of `repo` in Redis: the record is lost, as after losing Redis. */
async function forget(repo: string): Promise<void> {
  const keys = await redis().keys(`githa:repo:{${repo}.git}:*`);
  if (keys.length > 0) await redis().del(...keys);
}

/**
 * How long the CLI takes to start and stop doing nothing (`githa --version`):
 * a loaded machine takes a second or more to load the modules, which no
 * timeout of githa's covers.
 */
async function startupMs(configPath: string): Promise<number> {
  const started = performance.now();
  const r = await githaCli(configPath, ['--version']);
  expect(r.code).toBe(0);
  return performance.now() - started;
}

/** A config of the cluster's backends whose Redis is `url`, with a short redis.commandTimeoutMs. */
function configWithRedis(url: string, commandTimeoutMs: number): string {
  const c = cluster();
  const path = join(c.dir, `cli-output-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify({ redis: { url, commandTimeoutMs }, backends: c.backends.map((b) => ({ id: b.id, http: b.httpUrl })) }));
  return path;
}

describe('CLI output streams', () => {
  it('every read-only command survives a closed pipe: exit 0, no stack trace on stderr', async () => {
    const c = cluster();
    const githa = await startGitha(c);
    const git = GitClient.forCluster(c);
    await synced(git, githa, 'pipe/app');
    const commands = [['status'], ['status', '--json'], ['repo', 'pipe/app'], ['log', 'pipe/app'], ['log', 'pipe/app', '--json'], ['dataloss'], ['backend', 'list'], ['verify', 'pipe/app'], ['inventory'], ['--help']];
    for (const args of commands) {
      const r = await closedPipe(githa.configPath, args);
      expect({ args, code: r.code, signal: r.signal }).toEqual({ args, code: 0, signal: null });
      expect(r.stderr, `githa ${args.join(' ')}`).not.toMatch(STACK);
      expect(r.stderr, `githa ${args.join(' ')}`).not.toMatch(/EPIPE/);
    }
  });

  it('a mutating command whose reader closed the pipe still does all its work: recover of two repositories recovers both', async () => {
    const c = cluster();
    const githa = await startGitha(c);
    const git = GitClient.forCluster(c);
    await synced(git, githa, 'pipe/one');
    await synced(git, githa, 'pipe/two');
    await githa.stop();
    await forget('pipe/one');
    await forget('pipe/two');
    // The first result line fails with EPIPE while the second repository is still to be recovered.
    const r = await closedPipe(githa.configPath, ['recover', 'pipe/one', 'pipe/two']);
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    expect(r.stderr).not.toMatch(STACK);
    expect(await redis().keys('githa:repo:{pipe/one.git}:*')).not.toEqual([]);
    expect(await redis().keys('githa:repo:{pipe/two.git}:*')).not.toEqual([]);
  });

  it('recover through a pipe: plain progress lines and human log lines on stderr, no JSON; on a terminal a progress bar', async () => {
    const c = cluster();
    const githa = await startGitha(c);
    const git = GitClient.forCluster(c);
    await synced(git, githa, 'recover/same');
    const { sha } = await synced(git, githa, 'recover/differ');
    await githa.stop();
    // Redis loses both records; one copy of recover/differ changes meanwhile: recover freezes it as ambiguous (logged as an error).
    await forget('recover/same');
    await forget('recover/differ');
    await gitDir(c.backend('b2'), 'recover/differ.git', ['update-ref', 'refs/heads/by-hand', sha]);

    const piped = await githaCli(githa.configPath, ['recover', 'recover/same', 'recover/differ']);
    expect(piped.code, piped.stderr).toBe(1);
    expect(piped.stdout).toMatch(/^recover\/same\.git\trecovered\t/m);
    expect(piped.stdout).toMatch(/^recover\/differ\.git\tAMBIGUOUS\t/m);
    expect(piped.stdout + piped.stderr).not.toMatch(PINO);
    expect(piped.stderr).toMatch(/^recovering: 1\/2 recover\/same\.git$/m);
    expect(piped.stderr).toMatch(/^recovering: 2\/2 recover\/differ\.git$/m);
    expect(piped.stderr).toMatch(/^\d\d:\d\d:\d\d error recovery: copies differ; frozen as ambiguous repo=recover\/differ\.git /m);
    expect(piped.stderr).not.toContain('\r');

    await forget('recover/same');
    await forget('recover/differ');
    const tty = githaPty(githa.configPath, ['recover', 'recover/same', 'recover/differ']);
    expect(await tty.exit()).toBe(1);
    expect(tty.output()).toMatch(/recovering \[#+\] 2\/2 recover\/differ\.git/);
    expect(tty.output()).toMatch(/error recovery: copies differ; frozen as ambiguous/);
    expect(tty.output()).not.toMatch(PINO);
    expect(tty.output()).not.toMatch(/^recovering: \d\/2/m);
  });

  it('Redis refusing connections: exit 2 with a clear message within redis.commandTimeoutMs', async () => {
    const port = await new Promise<number>((res) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    const config = configWithRedis(`redis://127.0.0.1:${port}`, 1_000);
    const startup = await startupMs(config);
    const started = performance.now();
    const r = await githaCli(config, ['status']);
    const tookMs = performance.now() - started;
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`githa: cluster state unavailable: Redis at redis://127.0.0.1:${port} did not answer within 1000 ms (redis.commandTimeoutMs)\n`);
    expect(tookMs).toBeLessThan(startup + 1_000 + 1_500);
  });

  it('Redis accepting connections but never answering (SIGSTOP): exit 2 with a clear message within redis.commandTimeoutMs', async () => {
    const c = cluster();
    const config = configWithRedis(c.redis.url, 1_000);
    c.redis.pause();
    try {
      const startup = await startupMs(config);
      const started = performance.now();
      const r = await githaCli(config, ['status']);
      const tookMs = performance.now() - started;
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`githa: cluster state unavailable: Redis at ${c.redis.url} did not answer within 1000 ms (redis.commandTimeoutMs)\n`);
      expect(tookMs).toBeLessThan(startup + 1_000 + 1_500);
    } finally {
      c.redis.resume();
    }
  });
});
