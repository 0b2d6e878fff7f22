/**
 * The hostile-input corpus (test/fixtures/hostile) against the parsers and
 * classifiers: each case is refused with its own GithaError class and a
 * message that names the problem. test/integration/limits.test.ts sends the
 * same cases to a running githa.
 */
import { describe, expect, it } from 'vitest';
import * as errors from '../../src/errors.js';
import { decodeAll, PktLineDecoder } from '../../src/protocol/pkt-line.js';
import { ReceivePackRequestParser } from '../../src/protocol/receive-pack-request.js';
import { canonicalRepositoryName } from '../../src/protocol/repository-name.js';
import { classifyHttpRequest, parseGitDaemonRequest, parseSshCommand } from '../../src/protocol/request.js';
import { gitDaemonRequests, httpRequests, packetBytes, pktLines, receivePack, repositoryNames, urlPath } from '../support/hostile-corpus.js';

/** Runs fn, which must throw an instance of errors[expected] whose message matches. */
function refused(fn: () => unknown, expected: string, message: RegExp, what: string): void {
  const cls = (errors as unknown as Record<string, new (...a: never[]) => Error>)[expected];
  expect(cls, `${what}: unknown error class ${expected}`).toBeDefined();
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `${what}: nothing thrown`).toBeInstanceOf(cls!);
  expect((thrown as Error).message, what).toMatch(message);
}

/** Any GithaError will do (the transport may find another fault first, e.g. NUL ends a git:// path). */
function refusedSomehow(fn: () => unknown, what: string): void {
  expect(fn, what).toThrow(errors.GithaError);
}

describe('hostile corpus: repository names', () => {
  it.each(repositoryNames.map((c) => [JSON.stringify(c.name).slice(0, 60), c] as const))('%s', (what, c) => {
    refused(() => canonicalRepositoryName(c.name), c.error, c.message, what);
    // The same name through each transport's classifier.
    refusedSomehow(() => classifyHttpRequest('GET', `/${urlPath(c.name)}/info/refs?service=git-upload-pack`), `HTTP ${what}`);
    refusedSomehow(() => classifyHttpRequest('POST', `/${urlPath(c.name)}/git-receive-pack`), `HTTP POST ${what}`);
    refusedSomehow(() => parseSshCommand(`git-upload-pack '${c.name.replaceAll("'", "'\\''")}'`), `SSH ${what}`);
    refusedSomehow(() => parseGitDaemonRequest(Buffer.from(`git-upload-pack /${c.name}\0host=githa\0`, 'utf8')), `git:// ${what}`);
  });
});

describe('hostile corpus: pkt-lines', () => {
  it.each(pktLines.map((c) => [c.what, c] as const))('%s', (what, c) => {
    refused(() => decodeAll(c.bytes), c.error, c.message, what);
    // Fed byte by byte, the incremental decoder refuses it the same way.
    refused(
      () => {
        const d = new PktLineDecoder();
        for (const b of c.bytes) {
          d.write(Buffer.of(b));
          while (d.next() !== undefined);
        }
      },
      c.error,
      c.message,
      `${what} (byte by byte)`,
    );
    // A push's command list is pkt-lines too (the parser may find another fault first, e.g. an empty packet).
    refusedSomehow(() => new ReceivePackRequestParser().write(c.bytes), `${what} (push)`);
  });
});

describe('hostile corpus: push command lists', () => {
  it.each(receivePack.map((c) => [c.what, c] as const))('%s', (what, c) => {
    refused(() => new ReceivePackRequestParser().write(packetBytes(c.packets)), c.error, c.message, what);
  });

  it('refuses 20 000 commands over maxCommands with LimitExceededError, before reading them all', () => {
    const cmds = Array.from({ length: 20_000 }, (_, i) => `${'0'.repeat(40)} ${'1'.repeat(40)} refs/heads/b${i}${i === 0 ? '\0report-status' : ''}\n`);
    refused(() => new ReceivePackRequestParser({ maxCommands: 5_000 }).write(packetBytes([...cmds, null])), 'LimitExceededError', /more than 5000/, '20 000 commands');
  });
});

describe('hostile corpus: git:// request lines', () => {
  it.each(gitDaemonRequests.map((c) => [c.what, c] as const))('%s', (what, c) => {
    refused(() => parseGitDaemonRequest(c.bytes), c.error, c.message, what);
  });
});

describe('hostile corpus: HTTP request targets', () => {
  // Only what reaches githa's classifier (node's parser refuses the rest; test/integration/limits.test.ts).
  const classified = httpRequests.filter((c) => c.status === 404);
  it.each(classified.map((c) => [c.what, c] as const))('%s', (what, c) => {
    const [method, target] = c.request('x.git').toString('latin1').split(' ');
    refused(() => classifyHttpRequest(method!, target!), 'UnsupportedRequestError', c.message, what);
  });
});
