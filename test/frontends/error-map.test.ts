import { describe, expect, it } from 'vitest';
import {
  BackendAuthRequiredError,
  BackendProtocolError,
  ClusterStateUnavailableError,
  PktLineError,
  ProtocolSyntaxError,
  RemoteFatalError,
  InvalidRepositoryNameError,
  RepositoryBusyError,
  RepositoryFrozenError,
  RepositoryNotFoundError,
  UnsupportedRequestError,
} from '../../src/errors.js';
import { toClientError } from '../../src/frontends/error-map.js';
import { parseBasicAuthorization } from '../../src/auth/http-basic.js';

describe('toClientError', () => {
  it.each([
    [new InvalidRepositoryNameError('bad'), 400],
    [new UnsupportedRequestError('dumb'), 404],
    [new RepositoryNotFoundError('nope'), 404],
    [new RepositoryBusyError('busy'), 503],
    [new RepositoryFrozenError('frozen', 'ambiguous'), 503],
    [new ClusterStateUnavailableError('cluster state unavailable'), 503],
    // Where no challenge can be relayed (mode githa, SSH, git://) a backend asking githa for credentials is the backend's fault.
    [new BackendAuthRequiredError('backend b1 asks for credentials', 'b1', { status: 401, headers: {}, body: Buffer.alloc(0) }), 502],
  ])('maps %s to HTTP %i with its code', (err, status) => {
    const e = toClientError(err);
    expect(e.httpStatus).toBe(status);
    expect(e.code).toBe(err.code);
    expect(e.message).toBe(err.message);
  });

  it("splits the blame: a client's malformed request is 400, a backend's malformed answer or ERR is 502", () => {
    expect(toClientError(new PktLineError('bad pkt-line length')).httpStatus).toBe(400);
    expect(toClientError(new ProtocolSyntaxError('no command list')).httpStatus).toBe(400);
    // src/backends/http.ts wraps the parse errors of a backend's answer in BackendProtocolError.
    expect(toClientError(new BackendProtocolError('backend b1 sent a malformed answer: bad pkt-line length')).httpStatus).toBe(502);
    const err = toClientError(new RemoteFatalError('access denied', { backendId: 'b1' }));
    expect(err.httpStatus).toBe(502);
    expect(err.message).toBe('access denied');
  });

  it('never shows an unexpected error to the client', () => {
    const e = toClientError(new Error('secret path /etc/githa/key'));
    expect(e.httpStatus).toBe(500);
    expect(e.message).not.toContain('secret');
  });

  it('keeps messages to one line', () => {
    expect(toClientError(new RepositoryBusyError('a\nb\r\nc')).message).toBe('a b c');
  });
});

describe('the user name of Basic credentials (passthrough logs it; githa mode verifies it)', () => {
  const basic = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;
  const user = (h: string | undefined): string => {
    const c = parseBasicAuthorization(h);
    return c.kind === 'basic' ? c.user : 'anonymous';
  };
  it('takes the user name of Basic credentials, never the password', () => {
    expect(user(basic('alice:s3cret'))).toBe('alice');
  });
  it('is anonymous without usable credentials', () => {
    expect(user(undefined)).toBe('anonymous');
    expect(user('Bearer abc')).toBe('anonymous');
    expect(user(basic('bad name\n:x'))).toBe('anonymous');
  });
});
