#!/usr/bin/env node
/**
 * `npm run bench [-- --size MB --runs N]`: clone a generated repository
 * through githa and directly from a stock backend, over smart HTTP and over
 * SSH, interleaved (direct, githa, direct, githa, …) in one run, and print the
 * median wall times and the ratio githa / direct with the spread.
 * Benchmarks print ratios against a baseline from the same run, never absolute
 * goals: the machine varies, the ratio is what githa costs.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { buildConfig } from '../config/load.js';
import { startDevCluster } from '../devcluster/cluster.js';
import { generateKey, knownHostsLine } from '../devcluster/ssh.js';
import { startGitha } from '../githa.js';
import { createLogger } from '../log.js';

const run = promisify(execFile);

interface Row {
  figure: string;
  direct: number[];
  githa: number[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { size: { type: 'string', default: '100' }, runs: { type: 'string', default: '5' }, quick: { type: 'boolean' } } });
  const sizeMb = values.quick ? 20 : Number(values.size);
  const runs = values.quick ? 3 : Number(values.runs);
  const cluster = await startDevCluster({ backends: 1 });
  const out = (s: string): boolean => process.stdout.write(`${s}\n`);
  try {
    await cluster.createRepository('bench.git');
    const hostKey = join(cluster.dir, 'githa_host_key');
    await generateKey(hostKey, 'githa');
    const authorized = join(cluster.dir, 'githa_authorized_keys');
    writeFileSync(authorized, `${cluster.ssh.clientPublicKey}\n`);
    const backend = cluster.backends[0]!;
    const config = buildConfig({
      listen: { http: '127.0.0.1:0', admin: '127.0.0.1:0', ssh: '127.0.0.1:0' },
      redis: { url: cluster.redis.url },
      ssh: { hostKeys: [hostKey], authorizedKeys: authorized, backendKey: cluster.ssh.clientKeyPath, backendKnownHosts: cluster.ssh.knownHostsPath },
      backends: [{ id: backend.id, http: backend.httpUrl, ssh: backend.sshUrl }],
      log: { level: 'warn' },
    });
    const githa = await startGitha(config, createLogger('warn'));
    const knownHosts = join(cluster.dir, 'bench_known_hosts');
    writeFileSync(
      knownHosts,
      `${readFileSync(cluster.ssh.knownHostsPath, 'utf8')}${knownHostsLine(githa.addresses.ssh!.port, readFileSync(`${hostKey}.pub`, 'utf8'))}\n`,
    );
    const env = {
      ...process.env,
      GIT_TERMINAL_PROMPT: '0',
      GIT_SSH_COMMAND: `ssh -F /dev/null -i ${cluster.ssh.clientKeyPath} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes`,
      GIT_AUTHOR_NAME: 'bench',
      GIT_AUTHOR_EMAIL: 'bench@githa.invalid',
      GIT_COMMITTER_NAME: 'bench',
      GIT_COMMITTER_EMAIL: 'bench@githa.invalid',
    };
    out(`generating a ${sizeMb} MB repository (half incompressible, half text, 20 commits)…`);
    const work = join(cluster.dir, 'work');
    await run('git', ['init', '-q', '-b', 'main', work], { env });
    const perCommit = (sizeMb * 1024 * 1024) / 20;
    for (let i = 0; i < 20; i++) {
      writeFileSync(join(work, `data${i}.bin`), randomBytes(Math.floor(perCommit / 2)));
      writeFileSync(join(work, `text${i}.txt`), `line ${i} of compressible source text, repeated\n`.repeat(Math.floor(perCommit / 2 / 48)));
      await run('git', ['-C', work, 'add', '.'], { env });
      await run('git', ['-C', work, 'commit', '-qm', `commit ${i}`], { env });
    }
    await run('git', ['-C', work, 'push', '-q', backend.url('http', 'bench'), 'main'], { env, maxBuffer: 1 << 26 });

    const clones = join(cluster.dir, 'clones');
    mkdirSync(clones, { recursive: true });
    const time = async (url: string): Promise<number> => {
      const dir = join(clones, 'c');
      rmSync(dir, { recursive: true, force: true });
      const started = performance.now();
      await run('git', ['clone', '-q', '--bare', url, dir], { env, maxBuffer: 1 << 26 });
      return (performance.now() - started) / 1000;
    };
    const pairs: Array<[string, string, string]> = [
      ['clone over smart HTTP', backend.url('http', 'bench'), `http://127.0.0.1:${githa.addresses.http.port}/bench.git`],
      ['clone over SSH', backend.url('ssh', 'bench'), `ssh://git@127.0.0.1:${githa.addresses.ssh!.port}/bench.git`],
    ];
    const rows: Row[] = [];
    for (const [figure, direct, via] of pairs) {
      await time(via); // warm-up: adoption, connection pools, page cache
      const row: Row = { figure, direct: [], githa: [] };
      for (let i = 0; i < runs; i++) {
        row.direct.push(await time(direct));
        row.githa.push(await time(via));
      }
      rows.push(row);
    }
    out('');
    out(`| figure (${sizeMb} MB, ${runs} interleaved runs) | direct median s | githa median s | ratio githa/direct | ratio spread (min–max of pairs) |`);
    out('|---|---|---|---|---|');
    for (const r of rows) {
      const ratios = r.githa.map((g, i) => g / r.direct[i]!);
      out(
        `| ${r.figure} | ${median(r.direct).toFixed(2)} | ${median(r.githa).toFixed(2)} | ${(median(r.githa) / median(r.direct)).toFixed(3)} | ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} |`,
      );
    }
    await githa.close();
  } finally {
    await cluster.stop();
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
