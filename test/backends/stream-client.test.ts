/**
 * StreamGitClient (the BackendClient operations over a stateful stream) on
 * local `git upload-pack` / `git receive-pack` processes, which is what sshd
 * runs for a backend, and on fake streams for the failure cases. Fast: no
 * servers.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamGitClient } from '../../src/backends/stream-client.js';
import type { BackendStream, OpenServiceOptions, StreamService } from '../../src/backends/types.js';
import { planCommands } from '../../src/cluster/catch-up.js';
import { BackendProtocolError, BackendUnavailableError } from '../../src/errors.js';
import { encodePkt } from '../../src/protocol/pkt-line.js';

const ENV = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@t',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@t',
};

let dir: string;
const git = (args: string[], cwd = dir): string => execFileSync('git', args, { cwd, env: { ...ENV, HOME: dir }, encoding: 'utf8' }).trim();
const refsOf = (repo: string): string => git(['--git-dir', join(dir, repo), 'for-each-ref', '--format=%(objectname) %(objecttype) %(refname)']);

/** Runs the service as a local process, like sshd would; `v0` ignores the requested protocol (sshd without AcceptEnv). */
class LocalGitClient extends StreamGitClient {
  readonly transport = 'ssh' as const;
  streams = 0;
  constructor(
    private readonly root: string,
    private readonly v0 = false,
  ) {
    super('local', 10_000);
  }
  async openService(repo: string, service: StreamService, options: OpenServiceOptions = {}): Promise<BackendStream> {
    this.streams++;
    const env: Record<string, string> = { ...ENV, HOME: this.root };
    if (options.protocol && !this.v0) env.GIT_PROTOCOL = options.protocol;
    const child = spawn('git', [service.replace(/^git-/, ''), join(this.root, repo)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => {});
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exit, destroy: () => child.kill('SIGKILL') };
  }
  async close(): Promise<void> {}
}

interface Fake {
  stream: BackendStream;
  stdout: PassThrough;
  written: Buffer[];
  destroyed: boolean;
  exit(code: number | null): void;
}

/** A stream whose answers the test writes by hand. */
function fakeStream(): Fake {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const written: Buffer[] = [];
  stdin.on('data', (c: Buffer) => written.push(c));
  let exit: (code: number | null) => void = () => {};
  const fake: Fake = {
    stdout,
    written,
    destroyed: false,
    exit: (code) => exit(code),
    stream: {
      stdin,
      stdout,
      stderr: null,
      exit: new Promise((resolve) => (exit = resolve)),
      destroy: () => {
        fake.destroyed = true;
        stdout.destroy();
        exit(null);
      },
    },
  };
  return fake;
}

class FakeClient extends StreamGitClient {
  readonly transport = 'git' as const;
  constructor(
    private readonly make: () => Fake,
    timeoutMs = 10_000,
  ) {
    super('fake', timeoutMs);
  }
  async openService(): Promise<BackendStream> {
    return this.make().stream;
  }
  async close(): Promise<void> {}
}

/** Copies `repo` from one local root to another the way the catch-up relay does. */
async function copy(source: StreamGitClient, target: StreamGitClient, repo: string): Promise<number> {
  const want = (await source.listRefs(repo))!;
  const adv = (await target.receivePackAdvertisement(repo))!;
  const commands = planCommands(want, adv.refs);
  const wants = [...new Set(commands.filter((c) => !/^0+$/.test(c.newOid)).map((c) => c.newOid))];
  const pack = wants.length > 0 ? source.fetchPack(repo, wants, adv.refs.map((r) => r.oid)) : null;
  const report = await target.pushPack(repo, commands, ['report-status', 'atomic', 'delete-refs', 'ofs-delta'], pack);
  expect(report.unpackOk).toBe(true);
  expect(report.refs.every((r) => r.ok)).toBe(true);
  return commands.length;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'githa-stream-client-'));
  git(['init', '-q', '--bare', '-b', 'main', 'src.git']);
  git(['init', '-q', '--bare', '-b', 'main', 'dst-v2.git']);
  git(['init', '-q', '--bare', '-b', 'main', 'dst-v0.git']);
  git(['init', '-q', '--bare', '-b', 'main', 'empty.git']);
  git(['init', '-q', '-b', 'main', 'work']);
  const work = join(dir, 'work');
  for (let i = 0; i < 3; i++) {
    writeFileSync(join(work, 'f.txt'), `line ${i}\n`);
    git(['add', '.'], work);
    git(['commit', '-q', '-m', `c${i}`], work);
  }
  git(['branch', 'side'], work);
  git(['tag', '-a', 'v1', '-m', 'v1'], work);
  git(['push', '-q', '--mirror', join(dir, 'src.git')], work);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('StreamGitClient on local git processes', () => {
  it('lists the same refs over v2 (ls-refs) and over the v0 fallback', async () => {
    const v2 = await new LocalGitClient(dir).listRefs('src.git');
    const v0 = await new LocalGitClient(dir, true).listRefs('src.git');
    expect(v2).toHaveLength(4); // HEAD, main, side, v1
    expect(new Set(v0!.map((r) => `${r.oid} ${r.name}`))).toEqual(new Set(v2!.map((r) => `${r.oid} ${r.name}`)));
    expect(await new LocalGitClient(dir).listRefs('empty.git')).toEqual([]);
    expect(await new LocalGitClient(dir, true).listRefs('empty.git')).toEqual([]);
  });

  it('answers null for a missing repository (exit 128, "does not appear to be a git repository")', async () => {
    const client = new LocalGitClient(dir);
    expect(await client.listRefs('nope.git')).toBeNull();
    expect(await client.receivePackAdvertisement('nope.git')).toBeNull();
    await expect(client.pushPack('nope.git', [], [], null)).rejects.toBeInstanceOf(BackendProtocolError);
  });

  it.each([
    ['v2', false],
    ['v0', true],
  ] as const)('copies a repository with a %s fetch, then an update with haves', async (name, v0) => {
    const target = new LocalGitClient(dir, v0);
    const repo = `dst-${name}.git`;
    // The source repository under the target's name: copy src.git → dst-*.git.
    const from = new (class extends LocalGitClient {
      override openService(_repo: string, service: StreamService, options?: OpenServiceOptions): Promise<BackendStream> {
        return super.openService('src.git', service, options);
      }
    })(dir, v0);
    expect(await copy(from, target, repo)).toBe(3); // main, side, v1 (HEAD is never copied)
    expect(refsOf(repo)).toBe(refsOf('src.git'));
    git(['--git-dir', join(dir, repo), 'fsck', '--no-dangling']);
    // An update: one new commit on main, copied with the target's tips as haves.
    const work = join(dir, 'work');
    writeFileSync(join(work, 'f.txt'), `update ${name}\n`);
    git(['commit', '-q', '-am', `update ${name}`], work);
    git(['push', '-q', join(dir, 'src.git'), 'main'], work);
    expect(await copy(from, target, repo)).toBe(1);
    expect(refsOf(repo)).toBe(refsOf('src.git'));
    git(['--git-dir', join(dir, repo), 'fsck', '--no-dangling']);
    // Nothing left to do.
    expect(await copy(from, target, repo)).toBe(0);
  });

  it('cuts the push when the pack source fails, and nothing changes on the target', async () => {
    git(['init', '-q', '--bare', '-b', 'main', 'cut.git']);
    const client = new LocalGitClient(dir);
    const want = (await client.listRefs('src.git'))!;
    const main = want.find((r) => r.name === 'refs/heads/main')!.oid;
    const boom = new Error('the leader went away');
    async function* failing(): AsyncGenerator<Buffer> {
      let first = true;
      for await (const chunk of client.fetchPack('src.git', [main], [])) {
        if (!first) throw boom;
        first = false;
        yield chunk.subarray(0, Math.min(chunk.length, 20)); // a truncated pack
      }
      throw boom;
    }
    const push = client.pushPack('cut.git', [{ oldOid: '0'.repeat(40), newOid: main, ref: 'refs/heads/main' }], ['report-status'], failing());
    await expect(push).rejects.toBe(boom);
    expect(refsOf('cut.git')).toBe('');
  });

  it('stops the fetch when the consumer stops early, and honours an abort signal', async () => {
    const client = new LocalGitClient(dir);
    const want = (await client.listRefs('src.git'))!.map((r) => r.oid);
    for await (const chunk of client.fetchPack('src.git', want, [])) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    const aborted = new AbortController();
    const reason = new Error('caller gave up');
    aborted.abort(reason);
    await expect(client.listRefs('src.git', aborted.signal)).rejects.toBe(reason);
    const later = new AbortController();
    const it = client.fetchPack('src.git', want, [], later.signal)[Symbol.asyncIterator]();
    await it.next();
    later.abort(reason);
    await expect(
      (async () => {
        for (let r = await it.next(); !r.done; r = await it.next());
      })(),
    ).rejects.toBe(reason);
  });
});

describe('StreamGitClient on fake streams', () => {
  it('treats git daemon ERR answers for a missing repository as null, other ERRs as protocol errors', async () => {
    for (const message of ['no such repository: /x.git', 'access denied or repository not exported: /x.git']) {
      const client = new FakeClient(() => {
        const f = fakeStream();
        f.stdout.end(encodePkt(`ERR ${message}`));
        return f;
      });
      expect(await client.listRefs('x.git')).toBeNull();
    }
    const client = new FakeClient(() => {
      const f = fakeStream();
      f.stdout.end(encodePkt('ERR service not enabled: /x.git'));
      return f;
    });
    await expect(client.listRefs('x.git')).rejects.toThrow(BackendProtocolError);
    await expect(client.listRefs('x.git')).rejects.toThrow(/service not enabled/);
  });

  it('reports malformed answers as BackendProtocolError and tears the stream down', async () => {
    let fake: Fake | undefined;
    const client = new FakeClient(() => {
      fake = fakeStream();
      fake.stdout.write('zzzz garbage');
      return fake;
    });
    await expect(client.receivePackAdvertisement('x.git')).rejects.toBeInstanceOf(BackendProtocolError);
    expect(fake!.destroyed).toBe(true);
  });

  it('gives BackendUnavailableError when the backend says nothing for timeoutMs, or hangs up early', async () => {
    let fake: Fake | undefined;
    const slow = new FakeClient(() => (fake = fakeStream()), 150);
    const started = Date.now();
    const err = await slow.listRefs('x.git').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toMatch(/no answer/);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(fake!.destroyed).toBe(true);

    const early = new FakeClient(() => {
      const f = fakeStream();
      f.stdout.end(encodePkt('version 2\n'));
      f.exit(null);
      return f;
    });
    await expect(early.listRefs('x.git')).rejects.toThrow(/ended before the end of the advertisement/);
  });

  it('sends the v2 session end (a flush) after ls-refs', async () => {
    let fake: Fake | undefined;
    const client = new FakeClient(() => {
      const f = (fake = fakeStream());
      f.stdout.write(Buffer.concat([encodePkt('version 2\n'), encodePkt('ls-refs=unborn\n'), Buffer.from('0000')]));
      f.stream.stdin.on('finish', () => f.exit(0));
      // Answers ls-refs once the request's flush is in.
      f.stream.stdin.on('data', (c: Buffer) => {
        if (c.toString('latin1').includes('command=ls-refs')) f.stdout.end(Buffer.concat([encodePkt(`${'a'.repeat(40)} refs/heads/main\n`), Buffer.from('0000')]));
      });
      return f;
    });
    expect(await client.listRefs('x.git')).toEqual([{ name: 'refs/heads/main', oid: 'a'.repeat(40) }]);
    const sent = Buffer.concat(fake!.written).toString('latin1');
    expect(sent.startsWith('0014command=ls-refs\n')).toBe(true);
    // Its one argument, symrefs (the write check follows symbolic refs: src/cluster/write-check.ts), then the session end.
    expect(sent.endsWith('0001000csymrefs\n0000' + '0000')).toBe(true);
  });
});
