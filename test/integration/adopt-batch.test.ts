/**
 * Adoption in batches (docs/architecture.md "Adoption in batches"): with an
 * admin account on every backend (b2's restricted by githa-gate), `githa
 * inventory --all` lists the refs of many repositories in one `githa-admin
 * refs` call per backend. The repositories carry what makes a listing
 * tricky: packed and loose refs, an annotated and a lightweight tag, a
 * symbolic ref, a dangling one, a hideRefs config (listed over the
 * protocol instead). Every copy's checksum must equal the Git protocol
 * listing's; equal copies are adopted, one differing copy freezes its
 * repository as ambiguous.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshRepositoryAdmin } from '../../src/backends/admin.js';
import { HttpBackendClient } from '../../src/backends/http.js';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { githaCli } from '../cli/run.js';
import { FAST } from '../cli/setup.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { cliHash, cliVersions, repoKey } from '../support/state.js';

const execFileP = promisify(execFile);
const cluster = useCluster({ backends: 3, gatedAdmin: ['b2'] });
let redis: Redis;
beforeAll(() => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});
afterAll(() => redis?.disconnect());

const REPOS = Array.from({ length: 50 }, (_, i) => `batch/r${String(i).padStart(2, '0')}.git`);
const DIFFERS = 'batch/r07.git';
const HIDES = 'batch/r11.git';

async function gitIn(gitDir: string, args: string[]): Promise<string> {
  return (await execFileP('git', ['--git-dir', gitDir, ...args])).stdout.trim();
}

describe('adoption with the batched admin listing', () => {
  it('gives every copy the protocol listing checksum; adopts equal copies and freezes the one that differs', async () => {
    const c = cluster();
    const git = GitClient.forCluster(c);
    const work = await git.init('batch-work');
    await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    await execFileP('git', ['-C', work, 'tag', '-a', 'v1', '-m', 'annotated']);
    await execFileP('git', ['-C', work, 'tag', 'light']);
    await git.commit(work, { 'a.txt': 'two\n' }, 'two');
    // The template: everything pushed, then packed; one more ref loose, a symbolic ref and a dangling one.
    const b1 = c.backend('b1');
    await b1.createRepository('tmpl.git');
    const tmpl = b1.repoPath('tmpl');
    await git.push(work, tmpl, ['main', 'refs/tags/v1', 'refs/tags/light']);
    await gitIn(tmpl, ['pack-refs', '--all']);
    await gitIn(tmpl, ['update-ref', 'refs/heads/loose', 'refs/heads/main~1']);
    await gitIn(tmpl, ['symbolic-ref', 'refs/heads/alias', 'refs/heads/main']);
    await gitIn(tmpl, ['symbolic-ref', 'refs/heads/dangling', 'refs/heads/nowhere']);
    for (const b of c.backends) {
      for (const repo of REPOS) {
        const to = b.repoPath(repo.slice(0, -'.git'.length));
        mkdirSync(dirname(to), { recursive: true });
        cpSync(tmpl, to, { recursive: true });
      }
    }
    await gitIn(c.backend('b3').repoPath(DIFFERS.slice(0, -4)), ['update-ref', 'refs/heads/main', 'refs/heads/main~1']);
    for (const b of c.backends) await gitIn(b.repoPath(HIDES.slice(0, -4)), ['config', 'uploadpack.hideRefs', 'refs/tags']);

    // The admin's answers, against the protocol's listing of the same copies.
    for (const b of c.backends) {
      const admin = sshRepositoryAdmin({
        backend: { id: b.id, ssh: b.sshUrl, admin: true },
        ssh: { backendKey: c.ssh.clientKeyPath, backendKnownHosts: c.ssh.knownHostsPath },
        repositories: { trashDir: DEFAULTS.repositories.trashDir, initialBranch: 'main', gitConfig: {} },
        timeoutMs: 10_000,
      });
      const http = new HttpBackendClient({ id: b.id, baseUrl: b.httpUrl, timeoutMs: 10_000 });
      try {
        const answers = await admin.refs([...REPOS, 'batch/none.git']);
        expect(answers.get('batch/none.git')).toBeNull();
        expect(answers.get(HIDES)).toBeUndefined();
        const listed = answers.get(REPOS[0]!)!;
        expect(listed.map((r) => r.name).sort()).toEqual(['refs/heads/alias', 'refs/heads/loose', 'refs/heads/main', 'refs/tags/light', 'refs/tags/v1']);
        for (const repo of REPOS.filter((r) => r !== HIDES)) {
          expect(refsChecksum(answers.get(repo)!), `${b.id} ${repo}`).toBe(refsChecksum((await http.listRefs(repo))!));
        }
      } finally {
        await admin.close();
        await http.close();
      }
    }

    const githa = await startGitha(c, { admin: true, config: { ...FAST, replication: { background: false }, verify: { intervalMs: 0 } } });
    const all = await githaCli(githa.configPath, ['inventory', '--all']);
    expect(all.stdout).toMatch(new RegExp(`^${DIFFERS.replace('.', '\\.')}\\tAMBIGUOUS`, 'm'));
    for (const repo of REPOS.filter((r) => r !== DIFFERS)) {
      expect(all.stdout).toMatch(new RegExp(`^${repo.replace('.', '\\.')}\\trecovered\\tversion \\d+\\tleaders b1,b2,b3$`, 'm'));
      expect(Object.keys(await cliVersions(c, repo)).sort()).toEqual(['b1', 'b2', 'b3']);
    }
    expect(await redis.hget(repoKey(DIFFERS.slice(0, -4), 'frozen'), 'reason')).toBe('ambiguous');
    // The recorded checksums are the protocol listing's.
    const http = new HttpBackendClient({ id: 'b1', baseUrl: c.backend('b1').httpUrl, timeoutMs: 10_000 });
    try {
      for (const repo of [REPOS[0]!, HIDES]) {
        const sums = await cliHash(c, repoKey(repo.slice(0, -4), 'checksums'));
        expect(new Set(Object.values(sums))).toEqual(new Set([refsChecksum((await http.listRefs(repo))!)]));
      }
    } finally {
      await http.close();
    }
    await git.clone(githa.url('batch/r00'));
  });
});
