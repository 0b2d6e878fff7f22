/**
 * F7: 50 concurrent full fetches of the big repository, directly from b1 and
 * through githa. The clients are raw protocol-v2 fetch requests over smart
 * HTTP (gitprotocol-v2: `command=fetch`, every tip wanted, `done`) whose
 * answers are read and thrown away: 50 real `git clone`s would spend the
 * machine's two cores on index-pack and the disk on 50 copies, and measure
 * the clients rather than the servers. Figures: githa's peak RSS during the
 * round (VmHWM, reset before it) and the throughput ratio githa / direct.
 * githa spreads reads over its three backends; the direct clients do too
 * (client i asks backend i mod 3).
 */
import { request } from 'node:http';
import type { BenchEnv, BenchOptions, FigureOutput } from './env.js';
import { peakRss, resetPeakRss } from './procstat.js';
import { fmt, fmtRatio, pairedRatio } from './stats.js';

function pkt(line: string): Buffer {
  const body = Buffer.from(line);
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0')), body]);
}

/** The request body of a v2 fetch of `wants` from scratch. */
export function fetchRequest(wants: readonly string[]): Buffer {
  return Buffer.concat([
    pkt('command=fetch\n'),
    pkt('agent=githa-bench\n'),
    Buffer.from('0001'),
    pkt('ofs-delta\n'),
    pkt('no-progress\n'),
    ...wants.map((w) => pkt(`want ${w}\n`)),
    pkt('done\n'),
    Buffer.from('0000'),
  ]);
}

/** POSTs one fetch; resolves with the bytes of the answer, which must end with a flush-pkt. */
/** Every tip `url` advertises (HEAD aside), once each: what a full fetch wants. */
export async function advertisedTips(env: Pick<BenchEnv, 'git'>, url: string): Promise<string[]> {
  const lines = (await env.git(['ls-remote', url])).split('\n').filter((l) => l && !l.endsWith('\tHEAD'));
  return [...new Set(lines.map((l) => l.slice(0, l.indexOf('\t'))))];
}

export function fetchOnce(url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/git-upload-pack`,
      {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-git-upload-pack-request',
          Accept: 'application/x-git-upload-pack-result',
          'Git-Protocol': 'version=2',
          'Content-Length': body.length,
        },
      },
      (res) => {
        let bytes = 0;
        let tail = Buffer.alloc(0);
        let head = '';
        res.on('data', (c: Buffer) => {
          if (bytes < 200) head += c.subarray(0, 200 - bytes).toString('latin1');
          bytes += c.length;
          tail = Buffer.concat([tail, c.subarray(Math.max(0, c.length - 4))]).subarray(-4);
        });
        res.once('end', () => {
          const what = (): string => JSON.stringify(head.slice(0, 200));
          if (res.statusCode !== 200) return reject(new Error(`fetch from ${url}: HTTP ${res.statusCode}: ${what()}`));
          if (tail.toString('latin1') !== '0000') return reject(new Error(`fetch from ${url}: the answer was cut after ${bytes} bytes: ${what()}`));
          resolve(bytes);
        });
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

export async function concurrentFigure(env: BenchEnv, opts: BenchOptions, repo: string, sizeLabel: string): Promise<FigureOutput> {
  const clients = 50;
  const rounds = opts.quick ? 1 : 2;
  const g = env.githa.a;
  const directUrls = env.cluster.backends.map((b) => b.url('http', repo));
  const direct = directUrls[0]!;
  const body = fetchRequest(await advertisedTips(env, direct));
  const round = async (urls: readonly string[]): Promise<{ seconds: number; bytes: number }> => {
    const t0 = performance.now();
    const sizes = await Promise.all(Array.from({ length: clients }, (_, i) => fetchOnce(urls[i % urls.length]!, body)));
    return { seconds: (performance.now() - t0) / 1000, bytes: sizes.reduce((a, b) => a + b, 0) };
  };
  await fetchOnce(g.url(repo), body); // warm-up
  opts.out(`F7: ${clients} concurrent fetches of ${sizeLabel}, ${rounds} round(s) direct / githa`);
  const throughput = { direct: [] as number[], githa: [] as number[] };
  const peaks: number[] = [];
  const resettable = resetPeakRss(g.pid);
  for (let r = 0; r < rounds; r++) {
    const d = await round(directUrls);
    throughput.direct.push(d.bytes / d.seconds);
    resetPeakRss(g.pid);
    const v = await round([g.url(repo)]);
    throughput.githa.push(v.bytes / v.seconds);
    peaks.push(peakRss(g.pid));
  }
  const ratio = pairedRatio(throughput.direct, throughput.githa);
  const peak = Math.max(...peaks);
  const mb = (x: number): string => fmt(x / 1e6, 0);
  return {
    rows: [
      {
        figure: 'F7 RSS',
        measured: `githa's peak RSS during ${clients} concurrent fetches of ${sizeLabel}${resettable ? '' : ' (lifetime peak: clear_refs not writable)'}`,
        result: `${mb(peak)} MB`,
        goal: '≤ 200 MB',
        met: peak <= 200e6,
      },
      {
        figure: 'F7 throughput',
        measured: `${clients} concurrent fetches: direct ${mb(ratio.baseline)} MB/s, githa ${mb(ratio.subject)} MB/s`,
        result: `${fmtRatio(ratio)} ×`,
        goal: '≥ 0.9',
        met: ratio.ratio >= 0.9,
      },
    ],
    data: { F7: { clients, rounds, bytesPerSecond: throughput, ratio, peakRssBytes: peaks } },
  };
}
