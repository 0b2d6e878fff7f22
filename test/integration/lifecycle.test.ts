/**
 * The repository lifecycle end to end (docs/operations.md "Repository
 * lifecycle"): `githa create`, `rename`, `delete`, `restore` run as an
 * operator would, against real sshd/lighttpd/git-daemon backends managed
 * over their admin accounts and a real redis-server; clients use real git
 * over HTTP, SSH and git://.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { diskRefs } from '../support/backend-refs.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { githaCli } from '../cli/run.js';
import { waitFor } from '../support/wait.js';

const cluster = useCluster({ backends: 3 });

type Transport = 'http' | 'ssh' | 'git';
const sortKeys = (o: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
const urlOf = (g: GithaProcess, t: Transport, repo: string): string => (t === 'http' ? g.url(repo) : t === 'ssh' ? g.sshUrl(repo) : g.gitUrl(repo));

describe('repository lifecycle', () => {
  it('create → clone and push over HTTP, SSH and git:// → rename (old name told the new one) → delete (refused) → restore with the same refs', async () => {
    const c = cluster();
    const g = await startGitha(c, { ssh: true, git: { allowPush: true }, admin: true });
    const git = GitClient.forCluster(c, { knownHostsPath: g.knownHostsPath });
    const [R, S] = ['life/app', 'life/moved'];

    const created = await githaCli(g.configPath, ['create', R, '--description', 'the app', '--as', 'op-anna', '--json']);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toEqual({ repo: `${R}.git`, status: 'created', backends: ['b1', 'b2', 'b3'], pending: [] });
    for (const b of c.backends) expect(existsSync(join(b.root, `${R}.git`, 'HEAD'))).toBe(true);

    // Clonable at once (empty), and pushable over each transport.
    const empty = await git.clone(g.url(R));
    expect(await git.forEachRef(empty)).toEqual({});
    const work = await git.init();
    const want: Record<string, string> = {};
    for (const t of ['http', 'ssh', 'git'] as const) {
      want[`refs/heads/${t}`] = await git.commit(work, { [`${t}.txt`]: `${t}\n` }, t);
      await git.push(work, urlOf(g, t, R), [`HEAD:refs/heads/${t}`]);
      expect(await git.forEachRef(await git.clone(urlOf(g, t, R), ['--mirror']))).toEqual(want);
    }

    // Every copy holds every push (the write quorum's at once, the rest by the replicator) before the copies move.
    for (const b of c.backends) await waitFor(`${b.id} to hold every push`, async () => JSON.stringify(await diskRefs(b, `${R}.git`)) === JSON.stringify(sortKeys(want)), 20_000);
    const renamed = await githaCli(g.configPath, ['rename', R, S, '--json']);
    expect(renamed.code, renamed.stderr).toBe(0);
    expect(JSON.parse(renamed.stdout)).toMatchObject({ repo: `${R}.git`, to: `${S}.git`, backends: ['b1', 'b2', 'b3'] });
    for (const t of ['http', 'ssh', 'git'] as const) {
      const old = await git.run(['ls-remote', urlOf(g, t, R)], { allowFailure: true });
      expect(old.code).not.toBe(0);
      expect(old.stderr).toContain(`repository ${R}.git was renamed to ${S}.git`);
      expect(await git.forEachRef(await git.clone(urlOf(g, t, S), ['--mirror']))).toEqual(want);
    }
    for (const b of c.backends) expect(existsSync(join(b.root, `${R}.git`))).toBe(false);

    const deleted = await githaCli(g.configPath, ['delete', S]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(new RegExp(`^deleted ${S}\\.git: copies moved to \\.githa-trash/\\d{8}T\\d{6}Z/ on b1, b2, b3; restore with: githa restore ${S}\\.git\\n$`));
    for (const t of ['http', 'ssh', 'git'] as const) {
      const read = await git.run(['ls-remote', urlOf(g, t, S)], { allowFailure: true });
      expect(read.stderr).toContain(`repository ${S}.git was deleted`);
      const push = await git.push(work, urlOf(g, t, S), ['HEAD:refs/heads/after'], [], { allowFailure: true });
      expect(push.code).not.toBe(0);
      expect(push.stderr).toContain(`repository ${S}.git was deleted`);
    }
    for (const b of c.backends) {
      expect(existsSync(join(b.root, `${S}.git`))).toBe(false);
      expect(readdirSync(join(b.root, '.githa-trash'))).toHaveLength(1);
    }

    const restored = await githaCli(g.configPath, ['restore', S, '--json']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ repo: `${S}.git`, status: 'restored', backends: ['b1', 'b2', 'b3'], missing: [] });
    for (const b of c.backends) expect(await diskRefs(b, `${S}.git`)).toEqual(want);
    // The restored record is the one deleted: no copy is stale or drifted.
    const repo = await githaCli(g.configPath, ['repo', S, '--json']);
    expect(repo.code, repo.stdout + repo.stderr).toBe(0);
    expect(await git.forEachRef(await git.clone(g.sshUrl(S), ['--mirror']))).toEqual(want);
    want['refs/heads/again'] = await git.commit(work, { 'again.txt': 'again\n' }, 'again');
    await git.push(work, g.url(S), ['HEAD:refs/heads/again']);
    expect(await git.forEachRef(await git.clone(g.gitUrl(S), ['--mirror']))).toEqual(want);
  });

  it('create on push: on, a push to a repository that exists nowhere creates it; off, the pusher is told the operator\'s command', async () => {
    const c = cluster();
    const on = await startGitha(c, { ssh: true, admin: true, config: { repositories: { createOnPush: true } } });
    const git = GitClient.forCluster(c, { knownHostsPath: on.knownHostsPath });
    const work = await git.init();
    const oid = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, on.sshUrl('life/pushed'), ['HEAD:refs/heads/main']);
    // HTTP in passthrough mode (the default): githa has not verified the pusher and no backend has authorized it yet, so nothing is created.
    const unverified = await git.push(work, on.url('life/pushed-http'), ['HEAD:refs/heads/main'], [], { allowFailure: true });
    expect(unverified.code).not.toBe(0);
    expect(unverified.stderr).toContain('repository life/pushed-http.git not found; an operator creates it with: githa create life/pushed-http.git');
    for (const b of c.backends) expect(existsSync(join(b.root, 'life/pushed-http.git'))).toBe(false);
    // Created on every backend: the write quorum's copies at once, the others by the replicator.
    for (const b of c.backends) {
      for (const repo of ['life/pushed.git']) {
        await waitFor(`${repo} on ${b.id}`, async () => ((await diskRefs(b, repo))['refs/heads/main'] === oid ? true : undefined), 20_000);
      }
    }
    // A read creates nothing.
    const read = await git.run(['ls-remote', on.url('life/never')], { allowFailure: true });
    expect(read.code).not.toBe(0);
    for (const b of c.backends) expect(existsSync(join(b.root, 'life/never.git'))).toBe(false);

    const off = await startGitha(c, { ssh: true, admin: true });
    const offGit = GitClient.forCluster(c, { knownHostsPath: off.knownHostsPath });
    for (const url of [off.sshUrl('life/nowhere'), off.url('life/nowhere')]) {
      const push = await offGit.push(work, url, ['HEAD:refs/heads/main'], [], { allowFailure: true });
      expect(push.code).not.toBe(0);
      expect(push.stderr).toContain('repository life/nowhere.git not found; an operator creates it with: githa create life/nowhere.git');
    }
    for (const b of c.backends) expect(existsSync(join(b.root, 'life/nowhere.git'))).toBe(false);
  });

  it('a backend without admin makes create refuse, naming the commands to run there, and nothing changes', async () => {
    const c = cluster();
    const g = await startGitha(c, { admin: ['b1', 'b2'] });
    const r = await githaCli(g.configPath, ['create', 'life/manual']);
    expect(r.code).toBe(1);
    const b3 = c.backend('b3');
    expect(r.stderr).toContain('cannot create life/manual.git on b3: githa may not manage this backend');
    expect(r.stderr).toContain(`on b3: git init --bare --initial-branch=main ${b3.root}/life/manual.git && git --git-dir=${b3.root}/life/manual.git config http.receivepack 'true'`);
    for (const b of c.backends) expect(existsSync(join(b.root, 'life/manual.git'))).toBe(false);
    const again = await githaCli(g.configPath, ['delete', 'life/manual']);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('githa: repository life/manual.git not found\n');
  });
});
