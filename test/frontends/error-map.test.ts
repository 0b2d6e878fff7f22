import { describe, expect, it } from 'vitest';
import {
  ClusterStateUnavailableError,
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
  ])('maps %s to HTTP %i with its code', (err, status) => {
    const e = toClientError(err);
    expect(e.httpStatus).toBe(status);
    expect(e.code).toBe(err.code);
    expect(e.message).toBe(err.message);
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
