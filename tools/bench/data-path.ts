/**
 * The HTTP fetch answer's data path, compared side by side (docs/performance.md
 * "Lever 1"): one raw protocol-v2 fetch of `big` (concurrent.ts's client) at a
 * time through each of
 *
 *   direct    backend b1's lighttpd
 *   githa     this tree's build (dist/)
 *   before    another build given by --before DIR (DIR/cli/main.js): a copy of
 *             dist/ made at the commit before a change, with githa's package.json
 *             in DIR/.. (githa reads its version there) and node_modules above
 *   http      the minimal node:http proxy (floor-proxy.ts)
 *   undici    the same proxy on undici's `stream` (floor-proxy.ts)
 *   tcp       the plain TCP relay (floor-proxy.ts)
 *
 * round-robin, --runs rounds, each process's CPU (utime + stime, proc(5))
 * around each fetch. Prints, per path, the median CPU seconds per GB relayed
 * (and the user part: the JavaScript, where the paths differ; the system part
 * is mostly the socket reads and writes every path makes), the median wall
 * time and its ratio to direct's.
 *
 *   npm run build && npx tsc -p tsconfig.tools.json
 *   node dist-tools/tools/bench/data-path.js [--runs 5] [--size 200] [--before DIR]
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { advertisedTips, fetchOnce, fetchRequest } from './concurrent.js';
import { startBenchEnv } from './env.js';
import { startGithaChild } from './githa-process.js';
import { readFileSync } from 'node:fs';
import { statFields } from './procstat.js';
import { bigRepo, install } from './repos.js';
import { median } from './stats.js';
import { REPO_ROOT } from '../support/paths.js';

/** utime and stime of a process, seconds (proc(5) /proc/PID/stat fields 14 and 15). */
function userSys(pid: number): { user: number; sys: number } {
  const f = statFields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return { user: Number(f[14 - 3]) / 100, sys: Number(f[15 - 3]) / 100 };
}

interface Path {
  name: string;
  url: string;
  pid: number | undefined;
  cpu: number[];
  user: number[];
  wall: number[];
  bytes: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, size: { type: 'string' }, before: { type: 'string' } } });
  const runs = Number(values.runs ?? 5);
  const sizeMb = Number(values.size ?? 200);
  const cacheDir = join(REPO_ROOT, 'bench', '.cache');
  const out = (l: string): void => void process.stdout.write(`${l}\n`);
  const big = await bigRepo(cacheDir, sizeMb);
  out(`big: ${(big.bytes / 1e6).toFixed(1)} MB packed`);
  const env = await startBenchEnv({ quick: false, only: new Set(), runs, sizeMb, keep: false, cacheDir, out });
  try {
    for (const b of env.cluster.backends) await install(big.path, b.repoPath('big'));
    const common = { cluster: env.cluster, hostKey: join(env.cluster.dir, 'githa_host_ed25519_key'), authorizedKeys: join(env.cluster.dir, 'githa_authorized_keys') };
    const before = values.before
      ? await startGithaChild({ ...common, name: 'before', main: join(resolve(values.before), 'cli', 'main.js'), config: { replication: { writeQuorum: 1 } } })
      : undefined;
    const direct = env.backend(0).url('http', 'big');
    const paths: Path[] = [
      { name: 'direct', url: direct, pid: undefined },
      { name: 'githa', url: env.githa.a.url('big'), pid: env.githa.a.pid },
      ...(before ? [{ name: 'before', url: before.url('big'), pid: before.pid }] : []),
      { name: 'http', url: env.floor.url('http', 'big'), pid: env.floor.pid },
      { name: 'undici', url: env.floor.url('undici', 'big'), pid: env.floor.pid },
      { name: 'tcp', url: env.floor.url('tcp', 'big'), pid: env.floor.pid },
    ].map((p) => ({ ...p, cpu: [], user: [], wall: [], bytes: 0 }));
    const body = fetchRequest(await advertisedTips(env, direct));
    for (const p of paths) await fetchOnce(p.url, body); // warm-up: adoption, pools, page cache
    for (let r = 0; r < runs; r++) {
      for (const p of r % 2 === 0 ? paths : [...paths].reverse()) {
        const c0 = p.pid ? userSys(p.pid) : undefined;
        const t0 = performance.now();
        p.bytes = await fetchOnce(p.url, body);
        p.wall.push((performance.now() - t0) / 1000);
        if (p.pid && c0) {
          const c1 = userSys(p.pid);
          p.cpu.push(c1.user + c1.sys - c0.user - c0.sys);
          p.user.push(c1.user - c0.user);
        }
      }
      out(`round ${r + 1}/${runs}: ${paths.map((p) => `${p.name} ${p.wall.at(-1)!.toFixed(2)} s${p.pid ? ` ${p.cpu.at(-1)!.toFixed(2)} cpu` : ''}`).join(', ')}`);
    }
    const d = median(paths[0]!.wall);
    out('');
    out('| path | CPU s/GB, median (min–max) | of which user | wall s, median | wall / direct |');
    out('|---|---|---|---|---|');
    for (const p of paths) {
      const gb = p.bytes / 1e9;
      const perGb = p.cpu.map((c) => c / gb);
      const cpu = p.pid ? `${median(perGb).toFixed(2)} (${Math.min(...perGb).toFixed(2)}–${Math.max(...perGb).toFixed(2)})` : '—';
      const user = p.pid ? median(p.user.map((c) => c / gb)).toFixed(2) : '—';
      out(`| ${p.name} | ${cpu} | ${user} | ${median(p.wall).toFixed(2)} | ${(median(p.wall) / d).toFixed(2)} |`);
    }
    // The paths ran back to back in each round, under the same load: the per-round ratio is the steadier figure.
    const g = paths.find((p) => p.name === 'githa')!;
    for (const other of paths.filter((p) => p.pid !== undefined && p !== g)) {
      const r = g.cpu.map((c, i) => c / other.cpu[i]!);
      out(`githa / ${other.name} CPU, per round: median ${median(r).toFixed(2)} (${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)}); githa less in ${r.filter((x) => x < 1).length} of ${r.length}`);
    }
    await before?.stop();
  } finally {
    await env.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`data-path: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
