/**
 * The soak test's world (docs/security.md "Soak test"): a dev cluster (real
 * redis-server, three stock backends with lighttpd + http-backend, sshd and
 * git daemon) and one githa child process (its RSS its own, read from
 * /proc/PID/status) with auth.http.mode githa, SSH and git:// listeners.
 *
 * Users: `alice` (bcrypt, the legitimate HTTP client: item 4's verification
 * applies to her), `bob` (bcrypt, whose password the attackers guess) and
 * `mallory` (a token: the authenticated attacker of items 1 and 5). SSH keys:
 * the cluster's client key as user `soak` (legitimate), a second key as user
 * `mallory` (item 2's attacker; its per-user limit is not the legitimate one's).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bcrypt } from 'hash-wasm';
import { startDevCluster, type DevCluster } from '../../src/demo/cluster.js';
import { generateKey, knownHostsLine } from '../../src/demo/ssh.js';
import { startGithaChild, type GithaChild } from '../bench/githa-process.js';
import { isolatedGitEnv } from '../support/git-env.js';

export const MIB = 1024 * 1024;

/**
 * githa's budgets in the soak (docs/config.md): the process's held bytes are
 * capped well below V8's heap, and a slow push is judged over 15 s instead of
 * 120 s so that item 5's defence acts several times within the run.
 */
export const SOAK_LIMITS = {
  maxHeldBytes: 128 * MIB,
  maxHeldBytesPerRequest: 16 * MIB,
  pushRateWindowMs: 15_000,
  gitIdleTimeoutMs: 30_000,
};

/**
 * The documented bound on githa's RSS under the soak (docs/security.md "Soak
 * test"): its unloaded footprint (~150 MiB here) + four times the process's
 * held-bytes budget (128 MiB). What githa counts as held is the command
 * lists' bytes; what they cost in RSS is about three times that (the inflated
 * chunks, their concatenation, the parsed ref names, garbage V8 has not
 * collected yet), as the first runs measured.
 */
export const RSS_BOUND_BYTES = 150 * MIB + 4 * SOAK_LIMITS.maxHeldBytes;

export interface SoakEnv {
  cluster: DevCluster;
  githa: GithaChild;
  /** Repositories of the legitimate workers (one each) and of the attackers. */
  repos: { legit: string[]; attack: string };
  git: { env: NodeJS.ProcessEnv; work: string };
  alice: string;
  mallory: { token: string; keyPath: string };
  bobHash: string;
  stop(): Promise<void>;
}

const hash = (password: string): Promise<string> => bcrypt({ password, salt: randomBytes(16), costFactor: 10, outputType: 'encoded' });

export async function startSoakEnv(o: { workers: number; keep: boolean }): Promise<SoakEnv> {
  const cluster = await startDevCluster({ backends: 3, keepDir: o.keep, maxLifetimeMs: 60 * 60 * 1000 });
  try {
    const dir = cluster.dir;
    const hostKey = join(dir, 'githa_host_ed25519_key');
    const hostPub = await generateKey(hostKey, 'githa-soak');
    const malloryKey = join(dir, 'mallory_ed25519');
    const malloryPub = await generateKey(malloryKey, 'mallory');
    const authorizedKeys = join(dir, 'githa_authorized_keys');
    writeFileSync(authorizedKeys, `environment="GITHA_USER=soak" ${cluster.ssh.clientPublicKey.trim()}\nenvironment="GITHA_USER=mallory" ${malloryPub.trim()}\n`);
    const alice = 'alice-' + randomBytes(6).toString('hex');
    const token = randomBytes(24).toString('hex');
    const bobHash = await hash('bob-' + randomBytes(6).toString('hex'));
    const usersFile = join(dir, 'githa-users');
    writeFileSync(usersFile, `alice:${await hash(alice)}\nbob:${bobHash}\nmallory:$sha256$${createHash('sha256').update(token).digest('hex')}\n`);
    const repos = { legit: Array.from({ length: o.workers }, (_, i) => `soak/w${i + 1}`), attack: 'soak/target' };
    for (const r of [...repos.legit, repos.attack]) await cluster.createRepository(r);
    const githa = await startGithaChild({
      name: 'soak',
      cluster,
      hostKey,
      authorizedKeys,
      config: {
        listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0', ssh: '127.0.0.1:0', git: '127.0.0.1:0' },
        backends: cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl, ssh: b.sshUrl, git: b.gitUrl })),
        auth: { http: { mode: 'githa', usersFile } },
        memory: { maxHeldBytes: SOAK_LIMITS.maxHeldBytes, maxHeldBytesPerRequest: SOAK_LIMITS.maxHeldBytesPerRequest },
        push: { rateWindowMs: SOAK_LIMITS.pushRateWindowMs },
        gitDaemon: { allowPush: true, idleTimeoutMs: SOAK_LIMITS.gitIdleTimeoutMs },
      },
    });
    const work = join(dir, 'soak-work');
    const home = join(work, 'home');
    mkdirSync(home, { recursive: true });
    const knownHosts = join(work, 'known_hosts');
    writeFileSync(knownHosts, `${readFileSync(cluster.ssh.knownHostsPath, 'utf8').trimEnd()}\n${knownHostsLine(githa.sshPort, hostPub)}\n`);
    const env: NodeJS.ProcessEnv = {
      ...isolatedGitEnv(home, { name: 'soak', email: 'soak@githa.invalid' }),
      GIT_SSH_COMMAND: `ssh -F /dev/null -i ${cluster.ssh.clientKeyPath} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o LogLevel=ERROR`,
    };
    return {
      cluster,
      githa,
      repos,
      git: { env, work },
      alice,
      mallory: { token, keyPath: malloryKey },
      bobHash,
      async stop() {
        await githa.stop().catch(() => {});
        await cluster.stop();
      },
    };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}
