/**
 * F1 / F1s: a full clone (`git clone --bare`, protocol v2) of the big
 * repository through githa and directly from a backend, over smart HTTP and
 * over SSH, interleaved (direct, githa, direct, githa, …). Besides wall time,
 * F1 counts githa's CPU seconds per GB cloned and the backends' CPU for the
 * same clones (procstat.ts: lighttpd's or sshd's whole process tree).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchEnv, BenchOptions, FigureOutput } from './env.js';
import { totalCpu } from './procstat.js';
import { packedBytes } from './repos.js';
import { fmt, fmtRatio, pairedRatio, type FigureRow } from './stats.js';

interface Sample {
  seconds: number;
  githaCpu: number;
  backendCpu: number;
  bytes: number;
}

export async function cloneFigures(env: BenchEnv, opts: BenchOptions, repo: string, sizeLabel: string, which: { http: boolean; ssh: boolean }): Promise<FigureOutput> {
  const g = env.githa.a;
  const dir = join(env.work, 'clone');
  const clone = async (url: string, kind: 'http' | 'ssh', proxyPid = g.pid): Promise<Sample> => {
    rmSync(dir, { recursive: true, force: true });
    const backendCpu = env.serverCpu(kind);
    const cpu0 = totalCpu(proxyPid);
    const t0 = performance.now();
    await env.git(['-c', 'protocol.version=2', 'clone', '-q', '--bare', url, dir], { timeoutMs: 30 * 60_000 });
    const seconds = (performance.now() - t0) / 1000;
    const sample = { seconds, githaCpu: totalCpu(proxyPid) - cpu0, backendCpu: await backendCpu(), bytes: packedBytes(dir) };
    rmSync(dir, { recursive: true, force: true });
    return sample;
  };
  const rows: FigureRow[] = [];
  const data: Record<string, unknown> = {};
  const b1 = env.backend(0);
  const series: Array<{ kind: 'http' | 'ssh'; figure: string; direct: string; via: string; goal: number }> = [];
  if (which.http) series.push({ kind: 'http', figure: 'F1', direct: b1.url('http', repo), via: g.url(repo), goal: 1.05 });
  if (which.ssh) series.push({ kind: 'ssh', figure: 'F1s', direct: b1.url('ssh', repo), via: g.sshUrl(repo), goal: 1.2 });
  for (const s of series) {
    opts.out(`${s.figure}: clone of ${sizeLabel} over ${s.kind === 'http' ? 'smart HTTP' : 'SSH'}, ${opts.runs} interleaved pairs`);
    // Warm-up: adoption of the repository, pooled connections, the page cache.
    await clone(s.via, s.kind);
    if (!opts.quick) await clone(s.direct, s.kind);
    const direct: Sample[] = [];
    const githa: Sample[] = [];
    // Over HTTP a third side: the same clone through a plain Node TCP relay (floor-proxy.ts), the least a Node proxy costs here.
    const floor: Sample[] = [];
    const floorUrl = s.kind === 'http' ? env.floor.url('tcp', repo) : undefined;
    for (let i = 0; i < opts.runs; i++) {
      direct.push(await clone(s.direct, s.kind));
      githa.push(await clone(s.via, s.kind));
      if (floorUrl) floor.push(await clone(floorUrl, s.kind, env.floor.pid));
    }
    const r = pairedRatio(
      direct.map((x) => x.seconds),
      githa.map((x) => x.seconds),
    );
    rows.push({
      figure: s.figure,
      measured: `clone ${sizeLabel} over ${s.kind === 'http' ? 'HTTP' : 'SSH'}: direct ${fmt(r.baseline)} s, githa ${fmt(r.subject)} s (median of ${opts.runs})`,
      result: `${fmtRatio(r)} ×`,
      goal: `≤ ${s.goal}`,
      met: r.ratio <= s.goal,
    });
    const gb = githa.reduce((sum, x) => sum + x.bytes, 0) / 1e9;
    const githaCpu = githa.reduce((sum, x) => sum + x.githaCpu, 0);
    const backendCpu = githa.reduce((sum, x) => sum + x.backendCpu, 0);
    const directBackendCpu = direct.reduce((sum, x) => sum + x.backendCpu, 0);
    const share = githaCpu / backendCpu;
    rows.push({
      figure: `${s.figure} CPU`,
      measured: `githa ${fmt(githaCpu / gb)} CPU s/GB; backends ${fmt(backendCpu / gb)} CPU s/GB for the same clones (direct clones: ${fmt(directBackendCpu / gb)})`,
      result: `githa = ${fmt(share * 100, 0)} % of the backend's CPU`,
      goal: s.kind === 'http' ? '≤ 25 %' : '(no goal; same method)',
      met: s.kind === 'http' ? share <= 0.25 : undefined,
    });
    data[s.figure] = { transport: s.kind, ratio: r, direct, githa, githaCpuSecondsPerGb: githaCpu / gb, backendCpuSecondsPerGb: backendCpu / gb, githaCpuShare: share };
    if (floor.length > 0) {
      const fr = pairedRatio(
        direct.map((x) => x.seconds),
        floor.map((x) => x.seconds),
      );
      const floorGb = floor.reduce((sum, x) => sum + x.bytes, 0) / 1e9;
      const floorCpu = floor.reduce((sum, x) => sum + x.githaCpu, 0) / floorGb;
      const floorBackend = floor.reduce((sum, x) => sum + x.backendCpu, 0) / floorGb;
      rows.push({
        figure: `${s.figure} floor`,
        measured: `the same clones through a plain Node TCP relay (no HTTP parsing): ${fmt(fr.subject)} s, ${fmt(floorCpu)} CPU s/GB = ${fmt((floorCpu / floorBackend) * 100, 0)} % of the backend's`,
        result: `githa = ${fmt(githaCpu / gb / floorCpu)} × the relay's CPU; relay ${fmtRatio(fr)} × direct`,
        goal: '(reference: the least a Node proxy costs here)',
        met: undefined,
      });
      data[`${s.figure} floor`] = { ratio: fr, samples: floor, cpuSecondsPerGb: floorCpu, backendCpuSecondsPerGb: floorBackend };
    }
  }
  return { rows, data };
}
