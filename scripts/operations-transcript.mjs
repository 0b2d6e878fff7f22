// Regenerates docs/operations-transcript.md: real output of githa's operator
// commands in every failure state of the runbook (docs/operations.md).
//
//   npm run build && node scripts/operations-transcript.mjs
//
// It starts a dev cluster (redis-server, three stock backends) and one githa
// in this process, drives each state with the real git client and the real
// CLI, and stops everything at the end (also on error).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { buildConfig } from '../dist/config/load.js';
import { startDevCluster } from '../dist/demo/cluster.js';
import { startGitha } from '../dist/githa.js';
import { createLogger } from '../dist/log.js';

const run = promisify(execFile);
const MAIN = resolve(import.meta.dirname, '../dist/cli/main.js');
const OUT = resolve(import.meta.dirname, '../docs/operations-transcript.md');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const cluster = await startDevCluster({ backends: 3 });
const work = mkdtempSync(join(tmpdir(), 'githa-transcript-'));
const env = {
  ...process.env,
  HOME: work,
  USER: 'anna',
  GIT_TERMINAL_PROMPT: '0',
  GIT_AUTHOR_NAME: 'Anna',
  GIT_AUTHOR_EMAIL: 'anna@example.com',
  GIT_COMMITTER_NAME: 'Anna',
  GIT_COMMITTER_EMAIL: 'anna@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
};
let githa;
const parts = [];
try {
  const input = {
    listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0' },
    redis: { url: cluster.redis.url },
    backends: cluster.backends.map((b) => ({ id: b.id, http: b.httpUrl })),
    proxyId: 'githa-1',
    health: { intervalMs: 300, failuresToDown: 1, successesToUp: 1 },
    replication: { scanIntervalMs: 1_000 },
    interruptions: { staleAfterMs: 60_000 },
    verify: { intervalMs: 0 },
    log: { level: 'silent' },
  };
  const configFile = join(work, 'githa.yaml');
  writeFileSync(configFile, JSON.stringify(input, null, 2));
  githa = await startGitha(buildConfig(input), createLogger('silent'));
  const url = (repo) => `http://127.0.0.1:${githa.addresses.http.port}/${repo}`;
  const backend = (id) => cluster.backend(id);

  /** Runs a command, records it with its output and exit status. */
  async function shown(title, cmd, args, opts = {}) {
    let stdout;
    let stderr;
    let code = 0;
    try {
      ({ stdout, stderr } = await run(cmd, args, { env, cwd: opts.cwd ?? work, maxBuffer: 1 << 24 }));
    } catch (err) {
      ({ stdout = '', stderr = '' } = err);
      code = typeof err.code === 'number' ? err.code : 1;
    }
    const shownCmd = cmd === process.execPath ? `githa ${args.slice(1).filter((a, i, all) => a !== '--config' && all[i - 1] !== '--config').join(' ')}` : `${cmd} ${args.join(' ')}`;
    const text = `${stdout}${stderr}`.replaceAll(work, '~').replaceAll(/127\.0\.0\.1:\d+/g, 'githa.example.com');
    parts.push(`### ${title}\n\n\`\`\`\n$ ${shownCmd.replaceAll(/http:\/\/githa\.example\.com|http:\/\/127\.0\.0\.1:\d+/g, 'https://githa.example.com')}\n${text.trimEnd()}\n[exit ${code}]\n\`\`\`\n`);
    return { stdout, stderr, code };
  }
  const githaCmd = (title, ...args) => shown(title, process.execPath, [MAIN, ...args, '--config', configFile]);
  const git = (args, cwd) => run('git', args, { env, cwd: cwd ?? work });
  const heading = (h, text = '') => parts.push(`## ${h}\n\n${text}`);

  async function newRepo(name) {
    await cluster.createRepository(name);
    const dir = join(work, name.replaceAll('/', '-'));
    await git(['init', '-q', '-b', 'main', dir]);
    await git(['commit', '-q', '--allow-empty', '-m', `first commit of ${name}`], dir);
    await git(['push', '-q', url(name), 'main'], dir);
    return dir;
  }
  async function commit(dir, message) {
    await git(['commit', '-q', '--allow-empty', '-m', message], dir);
  }
  async function settle() {
    await sleep(1_500);
  }

  heading('Synchronized', 'Three pushes through githa; every copy is current.\n\n');
  const app = await newRepo('team/app.git');
  await commit(app, 'second');
  await git(['push', '-q', url('team/app.git'), 'main'], app);
  await settle();
  await githaCmd('every repository and backend', 'status');
  await githaCmd('one repository', 'repo', 'team/app');
  await githaCmd('the push log', 'log', 'team/app', '--limit', '5');

  heading('Fewer backends up than the write quorum', 'b2 and b3 are stopped.\n\n');
  await backend('b2').stop();
  await backend('b3').stop();
  await sleep(1_000);
  await commit(app, 'refused');
  await shown('a push is refused, naming how many are up', 'git', ['push', url('team/app.git'), 'main'], { cwd: app });
  await githaCmd('backends as the githa processes see them', 'backend', 'list');
  await backend('b2').start();
  await backend('b3').start();
  await sleep(1_000);

  heading('Partial: a backend behind', 'b3 is stopped while two pushes land on b1 and b2 (write quorum 2 of 3).\n\n');
  await backend('b3').stop();
  await sleep(800);
  await git(['push', '-q', url('team/app.git'), 'main'], app);
  await commit(app, 'while b3 is down');
  await git(['push', '-q', url('team/app.git'), 'main'], app);
  await githaCmd('b3 is stale', 'status');
  await backend('b3').start();
  await sleep(2_500);
  await githaCmd('seconds after b3 is back: caught up by replication', 'status');

  heading('Frozen: write interrupted', 'A githa died in the middle of a push to b1, and b1 went down with it (the marker is planted by hand here).\n\n');
  const legacy = await newRepo('team/legacy.git');
  await settle();
  await backend('b1').stop();
  const checksum = await cluster.redis.cli('HGET', 'githa:repo:{team/legacy.git}:checksums', 'b1');
  const old = String(Date.now() - 120_000);
  await cluster.redis.cli('HSET', 'githa:repo:{team/legacy.git}:writing', 'id', 'w-1', 'backend', 'b1', 'proxy', 'githa-2:4242', 'user', 'bob', 'transport', 'ssh', 'started', old, 'heartbeat', old, 'preChecksum', checksum.trim());
  await commit(legacy, 'blocked');
  await shown('a push is refused', 'git', ['push', url('team/legacy.git'), 'main'], { cwd: legacy });
  await githaCmd('the repository', 'repo', 'team/legacy');
  await githaCmd('b1 is gone for good: demote it (without --force githa asks first)', 'thaw', 'team/legacy', '--demote', 'b1', '--force');
  await shown('writable again', 'git', ['push', url('team/legacy.git'), 'main'], { cwd: legacy });
  await backend('b1').start();
  await sleep(1_500);

  heading('No reachable leader', 'The newest version of team/web.git is only on b1 (write quorum 1 at the time), and b1 is down.\n\n');
  const web = await newRepo('team/web.git');
  await settle();
  await backend('b1').stop();
  await sleep(800);
  await cluster.redis.cli('HSET', 'githa:repo:{team/web.git}:versions', 'b1', '9');
  await githaCmd('data at risk', 'dataloss');
  await shown('reads are refused, naming the lost leader', 'git', ['ls-remote', url('team/web.git')], { cwd: web });
  await githaCmd('accept the loss: demote b1', 'thaw', 'team/web', '--demote', 'b1', '--force');
  await shown('served by the others', 'git', ['ls-remote', url('team/web.git')], { cwd: web });
  await backend('b1').start();
  await sleep(1_000);

  heading('Ambiguous', 'team/docs.git existed on the backends before githa; someone pushed to b1 directly, so the copies differ.\n\n');
  await cluster.createRepository('team/docs.git');
  const docs = join(work, 'docs');
  await git(['init', '-q', '-b', 'main', docs]);
  await commit(docs, 'only on b1');
  await git(['push', '-q', backend('b1').url('http', 'team/docs.git'), 'main'], docs);
  await shown('githa refuses to guess', 'git', ['ls-remote', url('team/docs.git')], { cwd: docs });
  await githaCmd('the choice', 'repo', 'team/docs');
  await githaCmd('b1 has the right copy', 'thaw', 'team/docs', '--promote', 'b1', '--force');
  await settle();
  await githaCmd('converged', 'repo', 'team/docs');

  heading('Drift', 'Someone pushed to b3 directly, bypassing githa.\n\n');
  const side = join(work, 'side');
  await git(['clone', '-q', url('team/app.git'), side]);
  await git(['push', '-q', backend('b3').url('http', 'team/app.git'), 'HEAD:refs/heads/hotfix'], side);
  await githaCmd('verify finds it', 'verify', 'team/app');
  await githaCmd('b3 leads no more', 'repo', 'team/app');
  await githaCmd('throw the out-of-band change away', 'sync', 'team/app', '--to', 'b3', '--force');

  heading('Maintenance of one backend', '');
  await githaCmd('lock, edit b2 by hand, release (here after 1 s, for a script)', 'lock', 'team/app', '--backend', 'b2', '--release-after', '1');

  heading('Runtime backend overrides', '');
  await githaCmd('drain b3 before maintenance', 'backend', 'prevent-writes', 'b3');
  await githaCmd('', 'backend', 'list');
  await githaCmd('', 'backend', 'allow-writes', 'b3');

  heading('Redis lost', 'Every githa key is deleted (`redis-cli FLUSHALL`).\n\n');
  await cluster.redis.cli('FLUSHALL');
  await githaCmd('rebuild the records now (or let the first request adopt each repository)', 'recover', 'team/app', 'team/legacy', 'team/docs');
  await githaCmd('', 'status');
} finally {
  // Cleanup: a close failure must not hide the error that ended the run, and the cluster
  // and work directory go next regardless.
  await githa?.close().catch(() => {});
  await cluster.stop();
  rmSync(work, { recursive: true, force: true });
}
writeFileSync(
  OUT,
  `# Operator commands: a real transcript\n\nGenerated by \`node scripts/operations-transcript.mjs\` against a dev cluster (three stock backends behind one githa). Ports and paths are shortened; everything else is verbatim. Each block shows the command's standard output, then its standard error (prompts and progress go to stderr), then its exit status. The runbook is docs/operations.md.\n\n${parts.join('\n')}`,
);
process.stdout.write(`wrote ${OUT}\n`);
