import { describe, expect, it } from 'vitest';
import { encodeGitDaemonRequest, parseGitDaemonUrl } from '../../src/backends/git-daemon.js';

/** A pkt-line, with its length header computed here. */
const pkt = (payload: string): string => `${(payload.length + 4).toString(16).padStart(4, '0')}${payload}`;

describe('parseGitDaemonUrl', () => {
  it('reads host, port (default 9418), the host= parameter and the prefix', () => {
    expect(parseGitDaemonUrl('git://127.0.0.1:9419')).toEqual({ host: '127.0.0.1', port: 9419, hostParam: '127.0.0.1:9419', prefix: '' });
    expect(parseGitDaemonUrl('git://git.example.com/pub/')).toEqual({ host: 'git.example.com', port: 9418, hostParam: 'git.example.com', prefix: '/pub' });
    expect(parseGitDaemonUrl('git://[::1]:1234/x')).toEqual({ host: '::1', port: 1234, hostParam: '[::1]:1234', prefix: '/x' });
  });

  it('refuses other schemes, users, queries', () => {
    expect(() => parseGitDaemonUrl('ssh://host/x')).toThrow(/git:\/\//);
    expect(() => parseGitDaemonUrl('git://u@host/x')).toThrow(/user/);
    expect(() => parseGitDaemonUrl('git://host/x#y')).toThrow(/query/);
    expect(() => parseGitDaemonUrl('not a url')).toThrow();
  });
});

describe('encodeGitDaemonRequest', () => {
  it('is one pkt-line: service, path, host=, then the extra parameters after a second NUL', () => {
    expect(encodeGitDaemonRequest('git-upload-pack', '/app.git', '127.0.0.1:9419').toString('latin1')).toBe(
      pkt('git-upload-pack /app.git\0host=127.0.0.1:9419\0'),
    );
    expect(encodeGitDaemonRequest('git-upload-pack', '/app.git', 'h', 'version=2').toString('latin1')).toBe(
      pkt('git-upload-pack /app.git\0host=h\0\0version=2\0'),
    );
    expect(encodeGitDaemonRequest('git-receive-pack', '/a.git', 'h', 'version=2:object-format=sha256').toString('latin1')).toBe(
      pkt('git-receive-pack /a.git\0host=h\0\0version=2\0object-format=sha256\0'),
    );
  });

  it('is byte for byte what git 2.39 sends (captured from `git -c protocol.version=2 ls-remote git://…`)', () => {
    expect(encodeGitDaemonRequest('git-upload-pack', '/app.git', '127.0.0.1:36515', 'version=2').toString('latin1')).toBe(
      '003dgit-upload-pack /app.git\0host=127.0.0.1:36515\0\0version=2\0',
    );
  });

  it('refuses NUL and LF', () => {
    expect(() => encodeGitDaemonRequest('git-upload-pack', '/a\0b', 'h')).toThrow();
    expect(() => encodeGitDaemonRequest('git-upload-pack', '/a', 'h\n')).toThrow();
  });
});
