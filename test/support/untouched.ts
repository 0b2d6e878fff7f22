/**
 * "Touches no backend and leaves Redis unchanged", for tests of hostile input
 * against a running githa (test/integration/http-hostile.test.ts,
 * test/integration/limits.test.ts).
 *
 * - Backends: a sentinel request is sent to every backend's HTTP server and
 *   git daemon before and after; nothing may be logged between the two
 *   sentinels but the health checker's probes (lighttpd access log; the git
 *   daemon's `Request <service> for …` lines, which only a real request makes).
 * - Redis: the key list and each key's DEBUG DIGEST-VALUE are the same before
 *   and after. Shared backend health (`githa:backend:<id>`) is rewritten by
 *   the health checker all the time, so only its verdict (`health`) is
 *   compared: a hostile request must not get a backend marked down. And INFO
 *   commandstats (reset before) shows githa sent Redis no command but the
 *   checker's HSET.
 */
import { request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { expect } from 'vitest';
import type { DevCluster } from '../../src/demo/cluster.js';
import type { GithaProcess } from './githa.js';
import { pkt } from './hostile-corpus.js';
import { waitFor } from './wait.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request with the path sent exactly as given (no URL normalisation), on its own connection. */
export function raw(base: string, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const sized = body ? { 'content-length': String(body.length) } : {};
    const req = httpRequest({ host: hostname, port, method, path, agent: false, headers: { connection: 'close', ...sized, ...headers } });
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${path}: no answer within 20 s`)));
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Writes `bytes` on a new TCP connection and collects everything until the
 * peer closes (or `timeoutMs` passes: then `closed` is false).
 */
export function exchange(port: number, bytes: Buffer, timeoutMs = 20_000, localAddress = '127.0.0.1'): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    const parts: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data: Buffer.concat(parts), closed: false });
    }, timeoutMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => parts.push(c));
    // The peer closed its side: close ours (the 'close' below then follows at once).
    socket.on('end', () => socket.end());
    // A reset after the answer (the server closed with our bytes unread) still counts as closed.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(parts), closed: true });
    });
  });
}

/** Shared backend health (docs/redis.md). */
const isBackendHealth = (key: string): boolean => key.startsWith('githa:backend:');

/** Every key but shared health with the digest of its value; and each backend's health verdict. */
export async function redisState(c: DevCluster): Promise<Record<string, string>> {
  const all = (await c.redis.cli('KEYS', '*')).split('\n').filter((k) => k.length > 0).sort();
  const keys = all.filter((k) => !isBackendHealth(k));
  const out: Record<string, string> = {};
  if (keys.length > 0) {
    const digests = (await c.redis.cli('DEBUG', 'DIGEST-VALUE', ...keys)).split('\n');
    expect(digests).toHaveLength(keys.length);
    keys.forEach((k, i) => (out[k] = digests[i]!));
  }
  for (const k of all.filter(isBackendHealth)) out[`${k} health`] = await c.redis.cli('HGET', k, 'health');
  return out;
}

/**
 * Commands Redis ran since CONFIG RESETSTAT, minus the ones this helper sends
 * itself, the health checker's HSET of `githa:backend:<id>` (its only write
 * after start-up; src/state/backend-health.ts), and the HMGETs of the same
 * hashes by which the override watcher and the health store reload every few
 * seconds (src/state/overrides.ts): reads, on keys no request touches.
 */
export async function commandsSinceReset(c: DevCluster): Promise<string[]> {
  const ours = new Set(['config', 'debug', 'keys', 'info', 'hset', 'hget', 'hmget']);
  return (await c.redis.cli('INFO', 'commandstats'))
    .split('\n')
    .map((l) => /^cmdstat_([^:]+):calls=(\d+)/.exec(l.trim()))
    // Subcommands are reported as "config|resetstat".
    .filter((m): m is RegExpExecArray => m !== null && !ours.has(m[1]!.split('|')[0]!))
    .map((m) => `${m[1]}×${m[2]}`);
}

/** Sends a unique request to each backend's HTTP server and git daemon, and waits until both logged it; returns the marker. */
export async function sentinel(c: DevCluster): Promise<string> {
  const mark = `sentinel-${randomBytes(6).toString('hex')}`;
  for (const b of c.backends) {
    const r = await raw(`http://127.0.0.1:${b.ports.http}`, 'GET', `/${mark}`);
    expect(r.status).toBe(404);
    // git daemon logs "Request upload-pack for '/<mark>.git'" and refuses the unknown repository.
    await exchange(b.ports.git, pkt(`git-upload-pack /${mark}.git\0host=127.0.0.1\0`), 10_000);
  }
  const logs = c.backends.flatMap((b) => [b.logs.http, b.logs.git]);
  await waitFor(`the log line of ${mark} in every backend log`, () => logs.every((log) => readFileSync(log, 'utf8').includes(mark)), 10_000, {
    intervalMs: 20,
    detail: () => `missing in: ${logs.filter((log) => !readFileSync(log, 'utf8').includes(mark)).join(', ')}`,
  });
  return mark;
}

/** What each backend logged between two sentinels, probes left out. */
export function between(c: DevCluster, first: string, second: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const b of c.backends) {
    const slice = (file: string): string[] => {
      const lines = readFileSync(file, 'utf8').split('\n');
      const i = lines.findIndex((l) => l.includes(first));
      const j = lines.findIndex((l) => l.includes(second));
      expect(i).toBeGreaterThanOrEqual(0);
      expect(j).toBeGreaterThan(i);
      return lines.slice(i + 1, j);
    };
    out[b.id] = [
      // The health checker probes every backend all the time (HttpBackendClient.probe).
      ...slice(b.logs.http).filter((l) => !l.includes('/githa-health-probe.git/')),
      // git:// probes only connect; a request to a git daemon logs "Request …".
      ...slice(b.logs.git).filter((l) => /\bRequest\b/.test(l) && !l.includes(first) && !l.includes(second)),
    ];
  }
  return out;
}

/** Runs `requests` and checks that no backend saw a request and that Redis neither changed nor received a command from githa. */
export async function untouched(c: DevCluster, githa: GithaProcess, requests: () => Promise<void>): Promise<void> {
  // githa's Redis connection is up (its ready check is done) before the counters are reset.
  expect((await fetch(`${githa.adminUrl}/readyz`)).status).toBe(200);
  const first = await sentinel(c);
  const before = await redisState(c);
  await c.redis.cli('CONFIG', 'RESETSTAT');
  await requests();
  expect(await commandsSinceReset(c)).toEqual([]);
  expect(await redisState(c)).toEqual(before);
  const second = await sentinel(c);
  expect(between(c, first, second)).toEqual(Object.fromEntries(c.backends.map((b) => [b.id, []])));
}
