import { describe, expect, it } from 'vitest';
import { cgiName, cleanBackendRequest, headersToStrip } from '../../src/frontends/http/headers.js';

/** Which request headers never reach a backend (src/frontends/http/headers.ts; issue 19 item 7). */
describe('headersToStrip', () => {
  it('folds names as a CGI gateway does', () => {
    expect(cgiName('X_Remote_User')).toBe(cgiName('x-remote-user'));
    expect(cgiName('X.Remote.User')).toBe(cgiName('X-REMOTE-USER'));
    expect(cgiName('X-Remote-Users')).not.toBe(cgiName('X-Remote-User'));
  });

  it('drops identity and forwarding headers in every spelling, and keeps the rest', () => {
    const names = ['x_remote_user', 'remote-user', 'remote_user', 'x-forwarded-user', 'x-forwarded-for', 'x_forwarded_for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'x-real-ip', 'x_real_ip', 'proxy', 'keep-alive', 'te'];
    const kept = ['host', 'authorization', 'git-protocol', 'content-type', 'content-length', 'user-agent', 'x-remote-users'];
    expect(headersToStrip([...names, ...kept], undefined).sort()).toEqual([...names].sort());
  });

  it('drops the configured user header in any spelling', () => {
    expect(headersToStrip(['x_auth_name', 'x-auth-name', 'x.auth.name', 'x-auth'], undefined, ['X-Auth-Name'])).toEqual(['x_auth_name', 'x-auth-name', 'x.auth.name']);
  });

  it("drops what the client's Connection names, but never the framing or the target", () => {
    const names = ['x-hop-secret', 'x_other', 'host', 'content-length', 'transfer-encoding', 'content-type', 'content-encoding', 'authorization'];
    expect(headersToStrip(names, 'keep-alive, X-Hop-Secret ,x-other, Host, Content-Length, transfer-encoding, content-type, content-encoding').sort()).toEqual(['x-hop-secret', 'x_other']);
    expect(headersToStrip(names, ['close', 'authorization'])).toEqual(['authorization']);
    expect(headersToStrip(names, ', ,')).toEqual([]);
  });
});

/** githa's own forwarding headers (cleanBackendRequest): the scheme is the accepted socket's, HTTPS included. */
describe('cleanBackendRequest', () => {
  function forwarded(encrypted: boolean): Record<string, string> {
    const set: Record<string, string> = {};
    const proxyReq = { getHeaderNames: () => [], removeHeader: () => {}, setHeader: (n: string, v: string) => (set[n] = v) };
    const socket = { remoteAddress: '192.0.2.9', localPort: 8443, ...(encrypted ? { encrypted: true } : {}) };
    cleanBackendRequest(proxyReq as never, { socket, headers: { host: 'git.example.com' } } as never, []);
    return set;
  }

  it('says https for a request that came over listen.https, http otherwise', () => {
    expect(forwarded(true)['x-forwarded-proto']).toBe('https');
    expect(forwarded(false)['x-forwarded-proto']).toBe('http');
    expect(forwarded(true)['x-forwarded-for']).toBe('192.0.2.9');
  });
});
