/**
 * Repository names as git resolves them (docs/protocol.md "Repository
 * names"): stock servers find the repository `X` at `X.git`, `X` (bare) or
 * `X/.git` (non-bare), and so must githa, on every backend transport, while
 * `X` and `X.git` stay one repository. Each layout is cloned and pushed
 * through githa over HTTP, SSH and git:// under both spellings; a mix of
 * layouts across backends is kept in step by githa's copies and catch-up.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { RepositoryLayout } from '../../src/demo/backend.js';
import { useCluster, type DevBackend } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

const execFileP = promisify(execFile);
const cluster = useCluster({ backends: 3 });

/** Where a layout keeps the git directory of `name` (no `.git` in `name`). */
function gitDirOf(backend: DevBackend, name: string, layout: RepositoryLayout): string {
  const base = join(backend.root, name);
  return layout === 'X.git' ? `${base}.git` : layout === 'X' ? base : join(base, '.git');
}

/** refname → oid straight from the backend's disk, at the layout's own path. */
async function refsOnDisk(backend: DevBackend, name: string, layout: RepositoryLayout): Promise<Record<string, string>> {
  const { stdout } = await execFileP('git', ['--git-dir', gitDirOf(backend, name, layout), 'for-each-ref', '--format=%(objectname) %(refname)'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_CONFIG_NOSYSTEM: '1', HOME: backend.root },
  });
  const refs: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    if (!line) continue;
    const [oid, ref] = line.split(' ');
    refs[ref!] = oid!;
  }
  return refs;
}

async function create(name: string, layouts: Record<string, RepositoryLayout>): Promise<void> {
  for (const b of cluster().backends) await b.createRepository(name, layouts[b.id]!);
}

type Transport = 'http' | 'ssh' | 'git';

/** The client's URL through githa, spelled `name` or `name.git` exactly. */
function urlOf(g: GithaProcess, transport: Transport, spelled: string): string {
  if (transport === 'http') return `${g.httpUrl}/${spelled}`;
  if (transport === 'ssh') return `ssh://git@127.0.0.1:${g.sshPort}/${spelled}`;
  return `git://127.0.0.1:${g.gitPort}/${spelled}`;
}

const sorted = (refs: Record<string, string>): string => JSON.stringify(Object.entries(refs).sort(([a], [b]) => (a < b ? -1 : 1)));

/** Waits until every backend's copy, at its own layout, has exactly `want`. */
async function everyCopyHas(name: string, layouts: Record<string, RepositoryLayout>, want: Record<string, string>): Promise<void> {
  for (const b of cluster().backends) {
    await waitFor(`${b.id}'s copy of ${name} (${layouts[b.id]}) to have the pushed refs`, async () => {
      const refs = await refsOnDisk(b, name, layouts[b.id]!);
      return sorted(refs) === sorted(want) ? refs : undefined;
    }, 20_000);
    // No second copy appeared under githa's canonical spelling.
    if (layouts[b.id] !== 'X.git') expect(existsSync(`${join(b.root, name)}.git`)).toBe(false);
  }
}

describe('repository layouts X.git, X and X/.git behind githa', () => {
  for (const layout of ['X.git', 'X', 'X/.git'] as const) {
    it(`layout ${layout} on every backend: clone and push over HTTP, SSH and git://, spelled X and X.git`, async () => {
      const c = cluster();
      const name = `lay/uniform-${layout === 'X.git' ? 'suffix' : layout === 'X' ? 'bare' : 'nonbare'}`;
      const layouts = { b1: layout, b2: layout, b3: layout };
      await create(name, layouts);
      const g = await startGitha(c, { ssh: true, git: { allowPush: true } });
      const git = GitClient.forCluster(c, { knownHostsPath: g.knownHostsPath });
      const work = await git.init();
      const want: Record<string, string> = {};
      for (const transport of ['http', 'ssh', 'git'] as const) {
        for (const spelled of [name, `${name}.git`]) {
          const branch = `${transport}-${spelled.endsWith('.git') ? 'suffix' : 'plain'}`;
          const oid = await git.commit(work, { [`${branch}.txt`]: `${branch}\n` }, branch);
          await git.push(work, urlOf(g, transport, spelled), [`HEAD:refs/heads/${branch}`]);
          want[`refs/heads/${branch}`] = oid;
          // The other spelling reads the same repository, with every branch pushed so far.
          const other = spelled.endsWith('.git') ? name : `${name}.git`;
          const clone = await git.clone(urlOf(g, transport, other), ['--mirror']);
          expect(await git.forEachRef(clone)).toEqual(want);
        }
      }
      await everyCopyHas(name, layouts, want);
      // One identity: every request was logged under the canonical name, none as not found.
      const requests = g.logLines().filter((l) => l.msg === 'request' && typeof l.repo === 'string');
      expect(new Set(requests.map((l) => l.repo))).toEqual(new Set([`${name}.git`]));
      expect(g.logLines().filter((l) => l.code === 'GITHA_ERR_REPO_NOT_FOUND')).toEqual([]);
    });
  }

  for (const endpoint of ['http', 'ssh', 'git'] as const) {
    it(`a mix (b1 X.git, b2 X, b3 X/.git), githa reaching the backends over ${endpoint}: copies and catch-up find each layout`, async () => {
      const c = cluster();
      const name = `lay/mix-${endpoint}`;
      const layouts: Record<string, RepositoryLayout> = { b1: 'X.git', b2: 'X', b3: 'X/.git' };
      await create(name, layouts);
      // githa's own client of a backend (copies, catch-up) is its HTTP one when it has one:
      // told only about `endpoint`, githa copies over that transport.
      const g = await startGitha(c, { ssh: true, git: { allowPush: true }, endpoints: endpoint === 'http' ? ['http', 'ssh', 'git'] : [endpoint] });
      const transports: Transport[] = endpoint === 'http' ? ['http', 'ssh', 'git'] : ['ssh', 'git'];
      const git = GitClient.forCluster(c, { knownHostsPath: g.knownHostsPath });
      const work = await git.init();
      for (const [i, transport] of transports.entries()) {
        const oid = await git.commit(work, { [`${i}.txt`]: `${i}\n` }, `commit ${i}`);
        await git.push(work, urlOf(g, transport, i % 2 === 0 ? name : `${name}.git`), ['HEAD:refs/heads/main']);
        await everyCopyHas(name, layouts, { 'refs/heads/main': oid });
        const clone = await git.clone(urlOf(g, transport, i % 2 === 0 ? `${name}.git` : name), ['--mirror']);
        expect(await git.forEachRef(clone)).toEqual({ 'refs/heads/main': oid });
      }
    });
  }

  it('a stale backend whose copy is a non-bare X/.git is caught up from a leader whose copy is a bare X', async () => {
    const c = cluster();
    const name = 'lay/catch-up';
    const layouts: Record<string, RepositoryLayout> = { b1: 'X', b2: 'X', b3: 'X/.git' };
    await create(name, layouts);
    // b3 takes no writes from the pusher: it stays behind until the zone githa reads from it.
    const pusher = await startGitha(c, { singleCopy: true, backends: { b3: { writable: false } } });
    const east = await startGitha(c, { singleCopy: true, zone: 'east', backends: { b3: { zone: 'east' } } });
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const oid = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, pusher.url(name), ['HEAD:refs/heads/main']);
    expect(await refsOnDisk(c.backend('b3'), name, 'X/.git')).toEqual({});
    expect(await git.lsRemote(`${east.httpUrl}/${name}`, ['refs/heads/main'])).toEqual({ 'refs/heads/main': oid });
    expect(await refsOnDisk(c.backend('b3'), name, 'X/.git')).toEqual({ 'refs/heads/main': oid });
    expect(east.logLines().filter((l) => l.msg === 'catch-up')).toEqual([expect.objectContaining({ repo: `${name}.git`, target: 'b3', status: 'OK' })]);
  });
});

describe('repository layouts X, X.git and X/.git behind githa, backends under Apache', () => {
  const apache = useCluster({ backends: 2, webServer: 'apache' });

  for (const layout of ['X.git', 'X', 'X/.git'] as const) {
    it(`layout ${layout} under Apache: clone and push over HTTP, spelled X and X.git`, async () => {
      const c = apache();
      const name = `apl/${layout === 'X.git' ? 'suffix' : layout === 'X' ? 'bare' : 'nonbare'}`;
      for (const b of c.backends) await b.createRepository(name, layout);
      const g = await startGitha(c);
      const git = GitClient.forCluster(c);
      const work = await git.init();
      const want: Record<string, string> = {};
      for (const spelled of [name, `${name}.git`]) {
        const branch = spelled.endsWith('.git') ? 'suffix' : 'plain';
        want[`refs/heads/${branch}`] = await git.commit(work, { [`${branch}.txt`]: `${branch}\n` }, branch);
        await git.push(work, urlOf(g, 'http', spelled), [`HEAD:refs/heads/${branch}`]);
        const other = spelled.endsWith('.git') ? name : `${name}.git`;
        const clone = await git.clone(urlOf(g, 'http', other), ['--mirror']);
        expect(await git.forEachRef(clone)).toEqual(want);
      }
      for (const b of c.backends) {
        await waitFor(`${b.id}'s copy (${layout}) to have the pushed refs`, async () => {
          const refs = await refsOnDisk(b, name, layout);
          return sorted(refs) === sorted(want) ? refs : undefined;
        }, 20_000);
      }
      expect(g.logLines().filter((l) => l.code === 'GITHA_ERR_REPO_NOT_FOUND')).toEqual([]);
    });
  }
});

describe('a repository inside another one', () => {
  // The review of 2026-12-06: backends are asked for `X`, and a stock git serves any directory that looks like
  // a repository there. Whoever may push to a non-bare `X/.git` (receive.denyCurrentBranch=updateInstead
  // checks the push out) could plant `X/evil` and reach it as a second repository, with its own config.
  it('a directory pushed into a non-bare X/.git that looks like a repository is never served as X/evil.git', async () => {
    const c = cluster();
    const name = 'nest/host';
    await create(name, { b1: 'X/.git', b2: 'X/.git', b3: 'X/.git' });
    const g = await startGitha(c);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    await git.commit(
      work,
      {
        'evil/HEAD': 'ref: refs/heads/main\n',
        'evil/config': '[core]\n\trepositoryformatversion = 0\n\tbare = true\n[http]\n\treceivepack = true\n',
        'evil/objects/.keep': '',
        'evil/refs/heads/.keep': '',
      },
      'plant',
    );
    await git.push(work, urlOf(g, 'http', `${name}.git`), ['HEAD:refs/heads/main']);
    // The planted directory is checked out on a backend: stock git there would serve it.
    await waitFor('the push checked out on b1', async () => (existsSync(join(c.backend('b1').root, name, 'evil', 'HEAD')) ? true : undefined));
    const through = await git.run(['ls-remote', urlOf(g, 'http', `${name}/evil.git`)], { allowFailure: true });
    expect(through.code).not.toBe(0);
    expect(through.stderr).toMatch(/not found/);
    expect(await c.redis.cli('EXISTS', `githa:repo:{${name}/evil.git}:versions`)).toBe('0');
    expect(g.logLines().some((l) => l.msg === 'refused: the repository lies inside another repository' && l.repo === `${name}/evil.git`)).toBe(true);
  });
});
