/**
 * githa's own HTTP client of a backend (src/backends/http.ts) against canned
 * answers: an `ERR` packet is the backend's reason (RemoteFatalError, naming
 * the backend); malformed bytes are the backend's fault (BackendProtocolError,
 * 502), never a client-side PktLineError or ProtocolSyntaxError (400).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackendClient } from '../../src/backends/http.js';
import { movedBase } from '../../src/backends/http-read.js';
import { BackendProtocolError, RemoteFatalError } from '../../src/errors.js';

function pkt(s: string): Buffer {
  return Buffer.from(`${(Buffer.byteLength(s) + 4).toString(16).padStart(4, '0')}${s}`);
}
const REF = pkt(`${'1'.repeat(40)} refs/heads/main\n`);

const ANSWERS: Record<string, Buffer> = {
  err: pkt('ERR access denied\n'),
  // A listing cut by an ERR, with no flush-pkt: the ERR's reason, not "ended before a flush-pkt".
  'err-late': Buffer.concat([REF, pkt('ERR access denied\n')]),
  hex: Buffer.from('zzzz'),
  syntax: Buffer.from('0010hello world\n0000'),
  short: REF,
};

let server: ReturnType<typeof createServer>;
let client: HttpBackendClient;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    const name = /^\/git\/([a-z-]+)(?:\.git)?\//.exec(req.url ?? '')?.[1] ?? '';
    const body = ANSWERS[name];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-result', 'content-length': String(body.length) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  client = new HttpBackendClient({ id: 'b9', baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/git/`, timeoutMs: 5_000 });
});

afterAll(async () => {
  await client.close();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('HttpBackendClient answers', () => {
  it.each(['err', 'err-late'])('an ERR packet (%s) is the backend’s own reason', async (repo) => {
    const err = await client.listRefs(`${repo}.git`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteFatalError);
    expect((err as RemoteFatalError).message).toBe('access denied');
    expect((err as RemoteFatalError).backendId).toBe('b9');
  });

  it.each(['hex', 'syntax', 'short'])('a malformed answer (%s) is a BackendProtocolError', async (repo) => {
    await expect(client.listRefs(`${repo}.git`)).rejects.toBeInstanceOf(BackendProtocolError);
  });

  it('a missing repository is null', async () => {
    expect(await client.listRefs('missing.git')).toBeNull();
  });
});

describe('movedBase (a redirect that moved the repository)', () => {
  it('is the new base when the redirect kept the path and query', () => {
    expect(movedBase('http://h:1/git/team/app/info/refs?service=git-upload-pack', 'info/refs?service=git-upload-pack')).toBe('http://h:1/git/team/app');
    expect(movedBase('http://h:1/new/app/git-upload-pack', 'git-upload-pack')).toBe('http://h:1/new/app');
  });

  it('is nothing for a login page that names the old URL in its query, or a different query', () => {
    expect(movedBase('http://h:1/login?next=/git/app/info/refs?service=git-upload-pack', 'info/refs?service=git-upload-pack')).toBeUndefined();
    expect(movedBase('http://h:1/git/app/info/refs', 'info/refs?service=git-upload-pack')).toBeUndefined();
    expect(movedBase('http://h:1/info/refs?service=git-upload-pack', 'info/refs?service=git-upload-pack')).toBeUndefined();
  });
});
