/**
 * A fetch answer relayed by githa's own HTTP/1.1 client with its chunked
 * framing untouched (src/frontends/http/wire.ts, docs/architecture.md "The
 * fetch answer's data path"): the client gets it whole on a kept-alive
 * connection (a second request on the same socket works), and a client that
 * goes away mid-pack makes githa close its connection to the backend, not
 * drain it (observed in the kernel's TCP table and githa's read count).
 */
import { readFile } from 'node:fs/promises';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { encodeFetchRequest, FetchResponseReader } from '../../src/protocol/fetch.js';
import { useCluster } from '../support/cluster.js';
import { GitClient, writeRandomFile } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

/** Larger than every buffer between the backend and the client (kernel and node), so a client that stops reading stops the relay mid-pack. */
const SIZE = 48 * 1024 * 1024;

/** The socket inodes of ESTABLISHED TCP connections to 127.0.0.1:`port` (proc(5) /proc/net/tcp: remote address, state 01, inode). */
async function establishedTo(port: number): Promise<Set<string>> {
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const table = await readFile('/proc/net/tcp', 'utf8');
  const out = new Set<string>();
  for (const l of table.split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f[2] === remote && f[3] === '01' && f[9] !== undefined) out.add(f[9]);
  }
  return out;
}

/** Bytes the process has read, sockets included (proc(5) /proc/<pid>/io `rchar`). */
async function readBytes(pid: number): Promise<number> {
  const m = /^rchar:\s+(\d+)$/m.exec(await readFile(`/proc/${pid}/io`, 'utf8'));
  if (!m) throw new Error(`no rchar in /proc/${pid}/io`);
  return Number(m[1]);
}

function fetchPost(url: string, body: Buffer, agent: Agent | false): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}/git-upload-pack`,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-git-upload-pack-request', accept: 'application/x-git-upload-pack-result', 'git-protocol': 'version=2' } },
      resolve,
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Reads a fetch answer to its end: the pack's bytes, and whether it ended as protocol v2 says. */
function readAnswer(res: IncomingMessage): Promise<{ packBytes: number; ended: boolean }> {
  const reader = new FetchResponseReader();
  let packBytes = 0;
  let ended = false;
  return new Promise((resolve, reject) => {
    res.on('data', (c: Buffer) => {
      reader.write(c);
      for (let ev = reader.next(); ev; ev = reader.next()) {
        if (ev.type === 'pack') packBytes += ev.data.length;
        else if (ev.type === 'end') ended = true;
      }
    });
    res.on('end', () => resolve({ packBytes, ended }));
    res.on('error', reject);
  });
}

describe("fetch answers through githa's own HTTP client", () => {
  const cluster = useCluster({ backends: 2, repositories: ['wire/pack'] });
  let made: Promise<{ head: string }> | undefined;
  const repoWithPack = (git: GitClient, url: string): Promise<{ head: string }> =>
    (made ??= (async () => {
      const work = await git.init();
      await writeRandomFile(join(work, 'random.bin'), SIZE);
      await git.run(['add', 'random.bin'], { cwd: work });
      const head = await git.commit(work, { 'README.md': 'noise\n' }, 'wire');
      await git.push(work, url, ['main']);
      return { head };
    })());

  it('relays a pack whole, chunked, on a connection the client keeps alive for its next request', { timeout: 120_000 }, async () => {
    const c = cluster();
    const git = GitClient.forCluster(c);
    const { head } = await repoWithPack(git, c.backend('b1').url('http', 'wire/pack'));
    const githa = await startGitha(c, { only: ['b1'] });
    await git.lsRemote(githa.url('wire/pack'));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    onTestFinished(() => agent.destroy());
    const body = encodeFetchRequest({ wants: [head], haves: [], done: true, ofsDelta: true, noProgress: true, agent: 'githa-test' });
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await fetchPost(githa.url('wire/pack'), body, agent);
      ports.push(res.socket.localPort ?? 0);
      expect(res.statusCode).toBe(200);
      expect(res.headers['transfer-encoding']).toBe('chunked');
      const got = await readAnswer(res);
      expect(got.ended).toBe(true);
      expect(got.packBytes).toBeGreaterThanOrEqual(SIZE);
    }
    expect(ports[1]).toBe(ports[0]); // the same client connection carried both
  });

  it("closes githa's connection to the backend when the client goes away in the middle of the pack", { timeout: 120_000 }, async () => {
    const c = cluster();
    const git = GitClient.forCluster(c);
    const b1 = c.backend('b1');
    const { head } = await repoWithPack(git, b1.url('http', 'wire/pack'));
    const githa = await startGitha(c, { only: ['b1'] });
    await git.lsRemote(githa.url('wire/pack'));
    const body = encodeFetchRequest({ wants: [head], haves: [], done: true, ofsDelta: true, noProgress: true, agent: 'githa-test' });
    // The connections to b1 that were open before (githa's kept-alive listing and probe connections) are not the fetch's.
    const before = await establishedTo(b1.ports.http);
    const res = await fetchPost(githa.url('wire/pack'), body, false);
    expect(res.statusCode).toBe(200);
    const first = new Promise<void>((resolve) => res.once('data', () => resolve()));
    await first;
    res.pause(); // the client stops reading: githa's relay pauses, its backend connection stays open
    const fetching = [...(await establishedTo(b1.ports.http))].filter((i) => !before.has(i));
    expect(fetching.length).toBeGreaterThan(0);
    const readAtCut = await readBytes(githa.pid);
    res.destroy();
    await waitFor("githa's connection to b1 closed", async () => {
      const now = await establishedTo(b1.ports.http);
      return fetching.every((i) => !now.has(i));
    });
    // Closed, not drained: githa read little of the rest of the pack (most of it never left the backend's buffers).
    expect((await readBytes(githa.pid)) - readAtCut).toBeLessThan(SIZE / 4);
  });
});
