import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildConfig } from '../config/load.js';
import { startDevCluster } from '../demo/cluster.js';
import { generateKey, knownHostsLine } from '../demo/ssh.js';
import { startGitha } from '../githa.js';
import { createLogger } from '../log.js';
import { prettyLogStream } from './pretty-log.js';

const run = promisify(execFile);
const SAMPLE = 'demo/hello.git';

/**
 * `githa demo`: a managed redis-server, three stock backends (git http-backend
 * under lighttpd, sshd, git daemon) on loopback and one githa in front, with a
 * sample repository. Ctrl-C stops everything.
 */
export async function runDemo(opts: { dir?: string; json?: boolean }): Promise<void> {
  const cluster = await startDevCluster({ backends: 3, maxLifetimeMs: 0, ...(opts.dir ? { dir: opts.dir } : {}), redisAof: true });
  // JSON lines for machines; `HH:MM:SS level msg key=value…` when a person watches the terminal.
  const log = createLogger(process.env.GITHA_LOG_LEVEL ?? 'warn', process.stderr.isTTY ? prettyLogStream(process.stderr) : 2);
  let githa: Awaited<ReturnType<typeof startGitha>> | undefined;
  const shutdown = async (): Promise<void> => {
    await githa?.close().catch((err: unknown) => log.debug({ err: (err as Error)?.message }, 'githa did not close cleanly; stopping the cluster anyway'));
    await cluster.stop();
  };
  process.once('SIGINT', () => void shutdown().then(() => process.exit(0)));
  process.once('SIGTERM', () => void shutdown().then(() => process.exit(0)));
  try {
    await cluster.createRepository(SAMPLE);
    // githa's SSH host key, and who may log in: the demo's own key and yours.
    const hostKey = join(cluster.dir, 'githa_host_ed25519_key');
    if (!existsSync(hostKey)) await generateKey(hostKey, 'githa-demo');
    const authorized = join(cluster.dir, 'githa_authorized_keys');
    const yours = ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub']
      .map((f) => join(homedir(), '.ssh', f))
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f, 'utf8').trim());
    writeFileSync(authorized, [`environment="GITHA_USER=demo" ${cluster.ssh.clientPublicKey.trim()}`, ...yours].join('\n') + '\n');
    const input = {
      listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0', ssh: '127.0.0.1:0', git: '127.0.0.1:0' },
      redis: { url: cluster.redis.url },
      ssh: { hostKeys: [hostKey], authorizedKeys: authorized, backendKey: cluster.ssh.clientKeyPath, backendKnownHosts: cluster.ssh.knownHostsPath },
      // admin: githa may create, trash and rename repositories over each backend's SSH account (docs/operations.md "Repository lifecycle").
      backends: cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl, ssh: b.sshUrl, git: b.gitUrl, admin: true as const })),
      proxyId: 'demo',
    };
    const config = buildConfig(input);
    // The operator CLI (githa status, repo, thaw, …) reads the same configuration: JSON is YAML.
    const configFile = join(cluster.dir, 'githa.yaml');
    writeFileSync(configFile, `${JSON.stringify(input, null, 2)}\n`);
    githa = await startGitha(config, log);
    const httpUrl = `http://127.0.0.1:${githa.addresses.http.port}`;
    const sshPort = githa.addresses.ssh!.port;
    const knownHosts = join(cluster.dir, 'githa_known_hosts');
    writeFileSync(knownHosts, `${knownHostsLine(sshPort, readFileSync(`${hostKey}.pub`, 'utf8'))}\n`);
    await seed(`${httpUrl}/${SAMPLE}`);
    const sshCommand = `ssh -i ${cluster.ssh.clientKeyPath} -o IdentitiesOnly=yes -o UserKnownHostsFile=${knownHosts}`;
    const facts = {
      clone: {
        http: `${httpUrl}/${SAMPLE}`,
        ssh: `ssh://git@127.0.0.1:${sshPort}/${SAMPLE}`,
        git: `git://127.0.0.1:${githa.addresses.git!.port}/${SAMPLE}`,
      },
      sshCommand,
      redis: `redis-cli -p ${cluster.redis.port} HGETALL 'githa:repo:{${SAMPLE}}:versions'`,
      health: `http://127.0.0.1:${githa.addresses.admin.port}/readyz`,
      status: `http://127.0.0.1:${githa.addresses.admin.port}/status`,
      metrics: `http://127.0.0.1:${githa.addresses.admin.port}/metrics`,
      backends: cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl })),
      dir: cluster.dir,
      config: configFile,
      cli: `node dist/cli/main.js status --config ${configFile}`,
    };
    if (opts.json) process.stdout.write(`${JSON.stringify(facts, null, 2)}\n`);
    else {
      process.stdout.write(
        [
          'githa demo is running: three stock Git backends behind one githa.',
          '',
          `  clone (HTTP):   git clone ${facts.clone.http}`,
          `  clone (SSH):    GIT_SSH_COMMAND="${sshCommand}" git clone ${facts.clone.ssh}`,
          `  clone (git://): git clone ${facts.clone.git}`,
          `  cluster state:  ${facts.redis}`,
          `  readiness:      ${facts.health}`,
          `  status page:    ${facts.status}   (metrics: ${facts.metrics})`,
          `  operator CLI:   ${facts.cli}   (also repo, log, thaw, lock, sync, verify, …)`,
          `  new repository: ${facts.cli.replace(' status ', ' create team/app.git ')}`,
          `  backends:       ${facts.backends.map((b) => `${b.id} ${b.http}`).join(', ')} (each also serves SSH and git://)`,
          '',
          'Press Ctrl-C to stop everything.',
          '',
        ].join('\n'),
      );
    }
  } catch (err) {
    await shutdown();
    throw err;
  }
}

/** Pushes a first commit through githa, so the demo has something to clone. */
async function seed(url: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'githa-demo-seed-'));
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'githa demo', GIT_AUTHOR_EMAIL: 'demo@githa.invalid', GIT_COMMITTER_NAME: 'githa demo', GIT_COMMITTER_EMAIL: 'demo@githa.invalid' };
  try {
    const { stdout } = await run('git', ['ls-remote', url], { env });
    if (stdout.trim()) return;
    await run('git', ['init', '-q', '-b', 'main', work], { env });
    writeFileSync(join(work, 'README.md'), '# hello from githa\n\nThis repository lives on three stock Git servers.\n');
    await run('git', ['-C', work, 'add', 'README.md'], { env });
    await run('git', ['-C', work, 'commit', '-q', '-m', 'Hello, githa'], { env });
    await run('git', ['-C', work, 'push', '-q', url, 'main'], { env });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
