/**
 * Third-party Git implementations through githa (issue 17): libgit2 (pygit2),
 * Dulwich, JGit and isomorphic-git clone and push over smart HTTP, JGit and
 * libgit2 also over SSH. Each clones a repository seeded with stock git,
 * commits, pushes a new branch through githa; stock git then finds that
 * commit on the quorum at once (githa acknowledges a push once it is on the
 * quorum, docs/architecture.md "Write path"), on every backend after
 * replication, and the version and push are recorded in Redis.
 */
import { execFile } from 'node:child_process';
import fs, { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knownHostsLine } from '../../src/demo/ssh.js';
import { refOnDisk, gitDir } from '../support/backend-refs.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import {
  SYSTEM_PYTHON,
  clientHome,
  cleanEnv,
  hostKeySha256,
  jgit,
  jgitSshConfig,
  parseReport,
  run,
  writePythonClients,
  type PythonClients,
} from '../support/third-party.js';
import { waitFor } from '../support/wait.js';

const execFileP = promisify(execFile);
const ZERO = '0'.repeat(40);
const REPOS = ['tp/pygit2-http', 'tp/pygit2-ssh', 'tp/dulwich-http', 'tp/jgit-http', 'tp/jgit-ssh', 'tp/isogit-http'];

const cluster = useCluster({ backends: 3, repositories: REPOS });
let githa: GithaProcess;
let redis: Redis;
let scripts: PythonClients;
/** JSch (JGit 4.x) knows neither ed25519 host keys nor ed25519 identities: an ECDSA pair each. */
let ecdsaHostKey: string;
let ecdsaClientKey: string;

async function keygen(path: string, comment: string): Promise<void> {
  // PEM: JSch (Debian libjsch-java 0.1.55) does not read the "OPENSSH PRIVATE KEY" format.
  await execFileP('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-m', 'PEM', '-N', '', '-C', comment, '-f', path]);
}

beforeAll(async () => {
  const c = cluster();
  ecdsaHostKey = join(c.dir, 'githa_host_ecdsa_key');
  ecdsaClientKey = join(c.dir, 'jgit_client_ecdsa_key');
  await keygen(ecdsaHostKey, 'githa-host-ecdsa');
  await keygen(ecdsaClientKey, 'jgit@laptop');
  const authorizedKeys = join(c.dir, 'third-party-authorized-keys');
  writeFileSync(
    authorizedKeys,
    `environment="GITHA_USER=tester" ${c.ssh.clientPublicKey.trim()}\n` +
      `environment="GITHA_USER=jgit" ${readFileSync(`${ecdsaClientKey}.pub`, 'utf8').trim()}\n`,
  );
  // The ed25519 host key every githa of the cluster shares (startGitha makes it) plus an ECDSA one.
  githa = await startGitha(c, {
    ssh: true,
    keep: true,
    config: {
      ssh: {
        hostKeys: [join(c.dir, 'githa_host_ed25519_key'), ecdsaHostKey],
        authorizedKeys,
        backendKey: c.ssh.clientKeyPath,
        backendKnownHosts: c.ssh.knownHostsPath,
      },
    },
  });
  redis = new Redis(c.redis.url, { maxRetriesPerRequest: 1 });
  scripts = writePythonClients(join(c.dir, 'third-party-scripts'));
});

afterAll(async () => {
  redis?.disconnect();
  await githa?.stop();
});

// ---- helpers ------------------------------------------------------------------

const key = (repo: string, what: string): string => `githa:repo:{${repo}.git}:${what}`;

async function versions(repo: string): Promise<Record<string, number>> {
  return Object.fromEntries(Object.entries(await redis.hgetall(key(repo, 'versions'))).map(([b, v]) => [b, Number(v)]));
}

/** Pushes one commit to `main` with stock git through githa; returns its id and the versions after it. */
async function seed(repo: string): Promise<{ seeded: string; before: Record<string, number> }> {
  const stock = GitClient.forCluster(cluster());
  const work = await stock.init();
  const seeded = await stock.commit(work, { 'README.md': `seed of ${repo}\n` }, 'seed');
  await stock.push(work, githa.url(repo), ['main']);
  return { seeded, before: await versions(repo) };
}

/**
 * The client's push landed: a new version recorded by githa, the push logged
 * with its one ref update, the commit (with the client's file) on the quorum
 * at once and on every backend once replicated.
 */
async function expectLanded(
  repo: string,
  before: Record<string, number>,
  update: { branch: string; sha: string; file: string; content: RegExp; transport: 'http' | 'ssh'; user: string },
): Promise<void> {
  const c = cluster();
  const ref = `refs/heads/${update.branch}`;
  const after = await versions(repo);
  const was = Math.max(...Object.values(before));
  const now = Math.max(...Object.values(after));
  expect(now).toBe(was + 1);
  const current = Object.keys(after).filter((b) => after[b] === now);
  expect(current.length).toBeGreaterThanOrEqual(2); // writeQuorum: majority of 3
  for (const b of current) expect(await refOnDisk(c.backend(b), repo, ref), `${ref} on ${b}`).toBe(update.sha);

  // The push's log entry (background replication may have logged its catch-ups after it).
  const log = (await redis.xrange(key(repo, 'log'), '-', '+')).map(([, fields]) =>
    Object.fromEntries(fields.flatMap((f, i) => (i % 2 === 0 ? [[f, fields[i + 1]!]] : []))),
  );
  const pushes = log.filter((e) => e.event === 'push' && e.version === String(now));
  expect(pushes).toHaveLength(1);
  expect(pushes[0]).toMatchObject({ refs: `${ZERO} ${update.sha} ${ref}`, transport: update.transport, user: update.user });

  for (const b of c.backends) {
    await waitFor(`${ref} replicated to ${b.id}`, async () => (await refOnDisk(b, repo, ref)) === update.sha, 30_000);
    expect(await gitDir(b, repo, ['show', `${update.sha}:${update.file}`])).toMatch(update.content);
  }
}

// ---- tests ----------------------------------------------------------------------

describe('third-party clients through githa', () => {
  it('libgit2 (pygit2) clones and pushes over smart HTTP', async () => {
    const repo = 'tp/pygit2-http';
    const { seeded, before } = await seed(repo);
    const home = clientHome(cluster().dir, 'pygit2');
    const dest = join(home, 'clone');
    const { stdout } = await run(SYSTEM_PYTHON, [scripts.pygit2, githa.url(repo), dest, 'libgit2', '', '', ''], { env: cleanEnv(home) });
    const report = parseReport(stdout);
    expect(report.cloned).toBe(seeded);
    await expectLanded(repo, before, { branch: 'libgit2', sha: report.pushed, file: 'pygit2.txt', content: /^written by libgit2 /, transport: 'http', user: 'anonymous' });
  });

  it('libgit2 (pygit2) clones and pushes over SSH, checking githa’s host key', async () => {
    const repo = 'tp/pygit2-ssh';
    const { seeded, before } = await seed(repo);
    const home = clientHome(cluster().dir, 'pygit2-ssh');
    const keyPath = cluster().ssh.clientKeyPath;
    const args = (dest: string, trusted: string[]): string[] => [
      scripts.pygit2, githa.sshUrl(repo), dest, 'libgit2-ssh', keyPath, `${keyPath}.pub`, trusted.join(','),
    ];
    // The script's certificate check trusts only the host keys it is given: a backend's is refused…
    const stranger = hostKeySha256(cluster().backends[0]!.sshHostPublicKey);
    await expect(run(SYSTEM_PYTHON, args(join(home, 'refused'), [stranger]), { env: cleanEnv(home) })).rejects.toThrow(/untrusted host key/);
    // …and githa's (libssh2 picks the ECDSA or the ed25519 one) are trusted.
    const githaKeys = [join(cluster().dir, 'githa_host_ed25519_key.pub'), `${ecdsaHostKey}.pub`].map((p) => hostKeySha256(readFileSync(p, 'utf8')));
    const dest = join(home, 'clone');
    const { stdout } = await run(SYSTEM_PYTHON, args(dest, githaKeys), { env: cleanEnv(home) });
    const report = parseReport(stdout);
    expect(report.cloned).toBe(seeded);
    await expectLanded(repo, before, { branch: 'libgit2-ssh', sha: report.pushed, file: 'pygit2.txt', content: /^written by libgit2 /, transport: 'ssh', user: 'tester' });
  });

  it('Dulwich clones and pushes over smart HTTP', async () => {
    const repo = 'tp/dulwich-http';
    const { seeded, before } = await seed(repo);
    const home = clientHome(cluster().dir, 'dulwich');
    const { stdout } = await run(SYSTEM_PYTHON, [scripts.dulwich, githa.url(repo), join(home, 'clone'), 'dulwich'], { env: cleanEnv(home) });
    const report = parseReport(stdout);
    expect(report.cloned).toBe(seeded);
    await expectLanded(repo, before, { branch: 'dulwich', sha: report.pushed, file: 'dulwich.txt', content: /^written by dulwich\n$/, transport: 'http', user: 'anonymous' });
  });

  /** JGit's command line: clone, add, commit, push `main` to `branch`; returns what it cloned and pushed. */
  async function jgitRoundTrip(home: string, url: string, branch: string): Promise<{ cloned: string; pushed: string }> {
    const dest = join(home, 'clone');
    await jgit(home, ['clone', url, dest]);
    const stock = GitClient.forCluster(cluster());
    const cloned = await stock.revParse(dest, 'HEAD');
    writeFileSync(join(dest, 'jgit.txt'), 'written by jgit\n');
    await jgit(home, ['add', 'jgit.txt'], dest);
    await jgit(home, ['commit', '-m', 'commit by jgit'], dest);
    const pushed = await stock.revParse(dest, 'HEAD');
    const push = await jgit(home, ['push', 'origin', `refs/heads/main:refs/heads/${branch}`], dest);
    // JGit's push command reports a refused ref in its output, not its exit code.
    expect(push.stdout + push.stderr).not.toMatch(/rejected|error/i);
    expect(push.stdout).toMatch(new RegExp(`\\[new branch\\]\\s+main -> ${branch}`));
    return { cloned, pushed };
  }

  it('JGit clones and pushes over smart HTTP', async () => {
    const repo = 'tp/jgit-http';
    const { seeded, before } = await seed(repo);
    const home = clientHome(cluster().dir, 'jgit');
    const report = await jgitRoundTrip(home, githa.url(repo), 'jgit');
    expect(report.cloned).toBe(seeded);
    await expectLanded(repo, before, { branch: 'jgit', sha: report.pushed, file: 'jgit.txt', content: /^written by jgit\n$/, transport: 'http', user: 'anonymous' });
  });

  it('JGit (JSch) clones and pushes over SSH with strict host key checking', async () => {
    const repo = 'tp/jgit-ssh';
    const { seeded, before } = await seed(repo);
    const home = clientHome(cluster().dir, 'jgit-ssh');
    const sshConfig = { port: githa.sshPort!, keyPath: ecdsaClientKey };
    // Strict checking: without githa's key in known_hosts JSch refuses the host…
    jgitSshConfig(home, { ...sshConfig, knownHosts: readFileSync(cluster().ssh.knownHostsPath, 'utf8') });
    await expect(jgit(home, ['ls-remote', githa.sshUrl(repo)])).rejects.toThrow(/HostKey/i);
    // …and with it (the ECDSA one: JSch knows no ed25519) the round trip goes through.
    jgitSshConfig(home, { ...sshConfig, knownHosts: `${knownHostsLine(githa.sshPort!, readFileSync(`${ecdsaHostKey}.pub`, 'utf8'))}\n` });
    const report = await jgitRoundTrip(home, githa.sshUrl(repo), 'jgit-ssh');
    expect(report.cloned).toBe(seeded);
    await expectLanded(repo, before, { branch: 'jgit-ssh', sha: report.pushed, file: 'jgit.txt', content: /^written by jgit\n$/, transport: 'ssh', user: 'jgit' });
  });

  it('isomorphic-git clones and pushes over smart HTTP (protocol v1 only)', async () => {
    const repo = 'tp/isogit-http';
    const { seeded, before } = await seed(repo);
    const dir = join(clientHome(cluster().dir, 'isogit'), 'clone');
    await git.clone({ fs, http, dir, url: githa.url(repo) });
    expect(await git.resolveRef({ fs, dir, ref: 'HEAD' })).toBe(seeded);
    writeFileSync(join(dir, 'isogit.txt'), 'written by isomorphic-git\n');
    await git.add({ fs, dir, filepath: 'isogit.txt' });
    const sha = await git.commit({ fs, dir, message: 'commit by isomorphic-git', author: { name: 'isogit tester', email: 'isogit@githa.invalid' } });
    const result = await git.push({ fs, http, dir, remote: 'origin', ref: 'main', remoteRef: 'refs/heads/isogit' });
    expect(result.ok).toBe(true);
    expect(result.refs['refs/heads/isogit']).toMatchObject({ ok: true });
    await expectLanded(repo, before, { branch: 'isogit', sha, file: 'isogit.txt', content: /^written by isomorphic-git\n$/, transport: 'http', user: 'anonymous' });
  });
});
