/**
 * Moves end to end (docs/architecture.md "Moves"): repositories of factor 3
 * on 3 real backends (sshd, lighttpd/http-backend, git daemon, managed over
 * their admin accounts), githa restarted with 2 more, empty backends; then
 * `githa rebalance` evens them out while pushes go on — every acknowledged
 * push is on the final copies, each repository on exactly 3 backends, each
 * old copy in its backend's trash directory — then `githa move` alone and
 * `githa backend drain`.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { githaCli } from '../cli/run.js';
import { diskRefs, gitDir } from '../support/backend-refs.js';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { cliHash, repoKey, waitFor } from '../support/state.js';

const cluster = useCluster({ backends: 5 });
const MAIN = resolve(import.meta.dirname, '../../dist/cli/main.js');

/** The githa CLI as a child whose stderr lines can be waited for (progress), and its end. */
function spawnCli(configPath: string, args: string[]): { line(text: string): Promise<void>; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [MAIN, ...args, '--config', configPath], { env: { ...process.env, GITHA_CONFIG: '' } });
  let stdout = '';
  let stderr = '';
  const waiting: { text: string; resolve: () => void }[] = [];
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    for (const w of waiting.filter((x) => stderr.includes(x.text))) w.resolve();
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => child.on('close', (code) => res({ code, stdout, stderr })));
  return {
    line: (text) =>
      new Promise<void>((resolve, reject) => {
        if (stderr.includes(text)) return resolve();
        waiting.push({ text, resolve });
        void done.then((r) => reject(new Error(`the command ended (${r.code}) before printing ${JSON.stringify(text)}:\n${r.stderr}`)));
      }),
    done,
  };
}
const REPOS = ['mv/a', 'mv/b', 'mv/c', 'mv/d', 'mv/e', 'mv/f'].map((r) => `${r}.git`);
const FIRST = ['b1', 'b2', 'b3'];
const factor3 = { replication: { factor: 3 } };

async function assignedOf(c: DevCluster, repo: string): Promise<string[]> {
  return Object.keys(await cliHash(c, repoKey(repo, 'assigned'))).sort();
}

/** Every assigned copy of `repo` holds `tip` on main and every acknowledged commit (checked on disk). */
async function holdsAll(c: DevCluster, repo: string, acked: readonly string[]): Promise<boolean> {
  const tip = acked[acked.length - 1];
  for (const id of await assignedOf(c, repo)) {
    const b = c.backends.find((x) => x.id === id)!;
    if ((await diskRefs(b, repo).catch(() => ({}) as Record<string, string>))['refs/heads/main'] !== tip) return false;
  }
  return true;
}

describe('moves', () => {
  let g: GithaProcess;
  let git: GitClient;
  const work = new Map<string, string>();
  const acked = new Map<string, string[]>();
  afterAll(async () => {
    await g?.stop();
  });

  it('rebalance after adding 2 empty backends, with pushes going on: no acknowledged push lost, 3 copies each, old copies in the trash', async () => {
    const c = cluster();
    const first = await startGitha(c, { only: FIRST, admin: true, config: factor3 });
    git = GitClient.forCluster(c);
    for (const repo of REPOS) {
      const created = await githaCli(first.configPath, ['create', repo]);
      expect(created.code, created.stderr).toBe(0);
      // The assignment of a repository placed on the three backends there were (what placement records for factor 3 of 3).
      await c.redis.cli('HSET', repoKey(repo, 'assigned'), 'b1', '1', 'b2', '1', 'b3', '1');
      const w = await git.init();
      work.set(repo, w);
      acked.set(repo, [await git.commit(w, { 'a.txt': `${repo}\n` }, 'first')]);
      await git.push(w, first.url(repo), ['HEAD:refs/heads/main']);
    }
    await first.stop();

    // Kept for the next tests (stopped in afterAll).
    g = await startGitha(c, { admin: true, config: factor3, keep: true });
    const plan = await githaCli(g.configPath, ['rebalance', '--dry-run', '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    const planned = (JSON.parse(plan.stdout) as { plan: { repo: string; from: string; to: string }[] }).plan;
    // 18 copies over 5 backends: 4, 4, 4, 3, 3, so 6 copies leave b1-b3 for b4 and b5.
    expect(planned).toHaveLength(6);
    expect(planned.every((m) => FIRST.includes(m.from) && ['b4', 'b5'].includes(m.to))).toBe(true);

    // Pushes to every repository, one after another per repository, until the rebalance is done.
    let done = false;
    let during = 0;
    const pushers = REPOS.map(async (repo) => {
      const w = work.get(repo)!;
      for (let i = 1; !done; i++) {
        const sha = await git.commit(w, { [`f${i}.txt`]: `${i}\n` }, `push ${i}`);
        const r = await git.push(w, g.url(repo), ['HEAD:refs/heads/main'], [], { allowFailure: true });
        if (r.code === 0) {
          acked.get(repo)!.push(sha);
          if (!done) during += 1;
        } else {
          // Refused (not acknowledged): the next commit builds on it, so reset to what was acknowledged.
          await git.run(['reset', '--hard', acked.get(repo)!.at(-1)!], { cwd: w });
        }
      }
    });
    await waitFor('a push acknowledged before the rebalance starts', async () => REPOS.some((r) => acked.get(r)!.length > 1), 30_000);
    const run = await githaCli(g.configPath, ['rebalance', '--bandwidth', '50M/s', '--json'], 240_000);
    done = true;
    await Promise.all(pushers);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { moved: { repo: string; from: string; to: string; stamp: string; trash: string }[]; failed: unknown[] };
    expect(report.failed).toEqual([]);
    expect(report.moved).toHaveLength(6);
    expect(run.stderr).toMatch(/\[6\/6\] mv\/.\.git: on b[45] at version \d+/);
    expect(during).toBeGreaterThan(0);

    const copies: Record<string, number> = {};
    for (const repo of REPOS) {
      const assigned = await assignedOf(c, repo);
      expect(assigned).toHaveLength(3);
      for (const b of assigned) copies[b] = (copies[b] ?? 0) + 1;
      // Every acknowledged push is on every assigned copy once the background replication caught the third one up.
      await waitFor(`${repo}'s assigned copies to hold every acknowledged push`, () => holdsAll(c, repo, acked.get(repo)!), 30_000);
      for (const id of assigned) {
        const b = c.backends.find((x) => x.id === id)!;
        for (const sha of acked.get(repo)!) await gitDir(b, repo, ['cat-file', '-e', `${sha}^{commit}`]);
      }
    }
    expect(Object.values(copies).sort()).toEqual([3, 3, 4, 4, 4]);
    for (const m of report.moved) {
      const b = c.backends.find((x) => x.id === m.from)!;
      expect(m.trash).toBe('trashed');
      expect(existsSync(b.repoPath(m.repo))).toBe(false);
      expect(existsSync(join(b.root, '.githa-trash', m.stamp, m.repo, 'HEAD'))).toBe(true);
      const versions = await cliHash(c, repoKey(m.repo, 'versions'));
      expect(versions[m.from]).toBeUndefined();
    }
  }, 400_000);

  it('githa move R --from B --to C with a push while the move waits on C: the push is on C after the switch (push-log `move`), B\'s copy in its trash', async () => {
    const c = cluster();
    const repo = REPOS[0]!;
    const assigned = await assignedOf(c, repo);
    const from = assigned[0]!;
    const to = c.backends.map((b) => b.id).find((b) => !assigned.includes(b))!;
    // C hung (SIGSTOP) while the move starts: it waits on C before any copy or switch, and a push lands meanwhile.
    const target = c.backends.find((b) => b.id === to)!;
    target.pause();
    const moving = spawnCli(g.configPath, ['move', repo, '--from', from, '--to', to, '--as', 'op-mo']);
    await moving.line(`looking for ${to}'s copy`);
    const w = work.get(repo)!;
    const during = await git.commit(w, { 'during-move.txt': 'x\n' }, 'during the move');
    await git.push(w, g.url(repo), ['HEAD:refs/heads/main']);
    acked.get(repo)!.push(during);
    target.resume();
    const moved = await moving.done;
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(new RegExp(`^${repo.replace('/', '\\/')} moved from ${from} to ${to} \\(version \\d+, .* relayed, [\\d.]+ s\\); ${from}'s copy in its trash \\(\\d{8}T\\d{6}Z\\)\\n$`));
    expect(await assignedOf(c, repo)).toEqual([...assigned.filter((b) => b !== from), to].sort());
    expect(await diskRefs(c.backends.find((b) => b.id === to)!, repo)).toEqual({ 'refs/heads/main': acked.get(repo)!.at(-1) });
    expect(existsSync(c.backends.find((b) => b.id === from)!.repoPath(repo))).toBe(false);
    const log = await githaCli(g.configPath, ['log', repo, '--json']);
    expect(log.stdout).toContain('"event": "move"');
    // A clone through githa reads the new assignment.
    const clone = await git.clone(g.url(repo), ['--mirror']);
    expect((await git.forEachRef(clone))['refs/heads/main']).toBe(acked.get(repo)!.at(-1));

    const again = await githaCli(g.configPath, ['move', repo, '--from', from, '--to', to]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${from} does not hold ${repo}`);
  }, 200_000);

  it('githa backend drain B moves every copy off B; status shows it drained with none left; undrain ends it', async () => {
    const c = cluster();
    const drained = await githaCli(g.configPath, ['backend', 'drain', 'b4'], 240_000);
    expect(drained.code, drained.stderr).toBe(0);
    expect(drained.stdout).toContain('b4 is drained: it gets no new repository');
    expect(drained.stdout).toMatch(/b4: 0 repositories left\n/);
    for (const repo of REPOS) {
      const assigned = await assignedOf(c, repo);
      expect(assigned).toHaveLength(3);
      expect(assigned).not.toContain('b4');
      expect(existsSync(c.backends.find((b) => b.id === 'b4')!.repoPath(repo))).toBe(false);
    }
    const status = await githaCli(g.configPath, ['status']);
    expect(status.stdout).toContain('draining b4: 0 repositories left');
    expect((await c.redis.cli('HGET', 'githa:backend:b4', 'override.drain')).trim()).toBe('1');
    // A rebalance while b4 is drained gives it nothing.
    const plan = await githaCli(g.configPath, ['rebalance', '--dry-run', '--json']);
    expect((JSON.parse(plan.stdout) as { plan: { to: string }[] }).plan.every((m) => m.to !== 'b4')).toBe(true);

    const undrained = await githaCli(g.configPath, ['backend', 'undrain', 'b4']);
    expect(undrained.code, undrained.stderr).toBe(0);
    expect((await c.redis.cli('HGET', 'githa:backend:b4', 'override.drain')).trim()).toBe('');
  }, 300_000);
});
