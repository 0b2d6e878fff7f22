import { describe, expect, it } from 'vitest';
import {
  InvalidCommandError,
  InvalidRepositoryNameError,
  ProtocolSyntaxError,
  UnknownServiceError,
  UnsupportedRequestError,
} from '../../src/errors.js';
import {
  classifyHttpRequest,
  isValidGitProtocol,
  isWrite,
  parseGitDaemonRequest,
  parseService,
  parseSshCommand,
  protocolVersionFrom,
} from '../../src/protocol/request.js';

describe('services', () => {
  it('parses exactly the three services', () => {
    expect(parseService('git-upload-pack')).toBe('git-upload-pack');
    expect(parseService('git-receive-pack')).toBe('git-receive-pack');
    expect(parseService('git-upload-archive')).toBe('git-upload-archive');
    for (const bad of ['', 'upload-pack', 'GIT-UPLOAD-PACK', 'git-upload-pack ', 'git-shell', 'sh']) {
      expect(() => parseService(bad)).toThrow(UnknownServiceError);
    }
  });

  it('only receive-pack writes', () => {
    expect(isWrite('git-receive-pack')).toBe(true);
    expect(isWrite('git-upload-pack')).toBe(false);
    expect(isWrite('git-upload-archive')).toBe(false);
  });
});

describe('protocolVersionFrom', () => {
  it.each<[string | undefined, number]>([
    [undefined, 0],
    ['', 0],
    ['version=2', 2],
    ['version=1', 1],
    ['version=0', 0],
    ['version=2:object-format=sha1', 2],
    ['foo=bar:version=1', 1],
    ['version=1:version=2', 2],
    ['version=2:version=1', 2],
    ['version=3', 0],
    ['version=22', 0],
    ['version= 2', 0],
    ['Version=2', 0],
    ['version', 0],
    ['::::', 0],
  ])('%j -> %i', (value, version) => {
    expect(protocolVersionFrom(value)).toBe(version);
  });
});

describe('classifyHttpRequest', () => {
  it('classifies smart-HTTP requests', () => {
    expect(classifyHttpRequest('GET', '/team/app.git/info/refs?service=git-upload-pack')).toEqual({
      kind: 'advertisement',
      repo: 'team/app.git',
      service: 'git-upload-pack',
    });
    expect(classifyHttpRequest('GET', '/app/info/refs?service=git-receive-pack')).toEqual({
      kind: 'advertisement',
      repo: 'app.git',
      service: 'git-receive-pack',
    });
    expect(classifyHttpRequest('POST', '/app.git/git-upload-pack')).toEqual({
      kind: 'rpc',
      repo: 'app.git',
      service: 'git-upload-pack',
    });
    expect(classifyHttpRequest('POST', '/app.git/git-receive-pack')).toEqual({
      kind: 'rpc',
      repo: 'app.git',
      service: 'git-receive-pack',
    });
    expect(classifyHttpRequest('POST', '/app.git/git-upload-archive').service).toBe('git-upload-archive');
  });

  it('decodes the path once', () => {
    expect(classifyHttpRequest('POST', '/%74eam/app.git/git-upload-pack').repo).toBe('team/app.git');
    expect(classifyHttpRequest('POST', '/caf%C3%A9.git/git-upload-pack').repo).toBe('café.git');
  });

  it('ignores other query parameters', () => {
    expect(classifyHttpRequest('GET', '/a.git/info/refs?x=1&service=git-upload-pack').kind).toBe('advertisement');
  });

  it.each([
    ['a dot-dot path', '/%2e%2e/x.git/git-upload-pack'],
    ['a plain dot-dot path', '/../x.git/git-upload-pack'],
    ['a double-encoded dot-dot', '/%252e%252e/x.git/git-upload-pack'],
    ['an encoded slash', '/team%2fapp.git/git-upload-pack'],
    ['an encoded slash (uppercase)', '/team%2Fapp.git/git-upload-pack'],
    ['an encoded NUL', '/a%00.git/git-upload-pack'],
    ['an encoded backslash', '/a%5cb.git/git-upload-pack'],
    ['a malformed escape', '/a%zz.git/git-upload-pack'],
    ['a truncated escape', '/a%2/git-upload-pack'],
    ['invalid UTF-8', '/a%ff.git/git-upload-pack'],
    ['no repository', '/git-upload-pack'],
    ['a double slash', '/team//app.git/git-upload-pack'],
    ['a hidden directory', '/.git/git-upload-pack'],
    ['an option-like name', '/-x/info/refs?service=git-upload-pack'],
  ])('rejects %s', (_what, path) => {
    expect(() => classifyHttpRequest(path.includes('info/refs') ? 'GET' : 'POST', path)).toThrow(
      InvalidRepositoryNameError,
    );
  });

  it.each([
    ['GET', '/a.git/info/refs'],
    ['GET', '/a.git/HEAD'],
    ['HEAD', '/a.git/HEAD'],
    ['GET', '/a.git/objects/info/packs'],
    ['GET', '/a.git/objects/info/alternates'],
    ['GET', `/a.git/objects/ab/${'c'.repeat(38)}`],
    ['GET', `/a.git/objects/pack/pack-${'d'.repeat(40)}.pack`],
    ['GET', `/a.git/objects/pack/pack-${'d'.repeat(40)}.idx`],
  ])('refuses dumb HTTP: %s %s', (method, path) => {
    expect(() => classifyHttpRequest(method, path)).toThrow(
      new UnsupportedRequestError('dumb HTTP is not supported; use a smart-HTTP client'),
    );
  });

  it.each([
    ['GET', '/'],
    ['GET', '/a.git'],
    ['GET', '/a.git/config'],
    ['GET', '/a.git/git-upload-pack'],
    ['PUT', '/a.git/git-receive-pack'],
    ['POST', '/a.git/info/refs?service=git-upload-pack'],
    ['HEAD', '/a.git/info/refs?service=git-upload-pack'],
    ['GET', 'a.git/info/refs?service=git-upload-pack'],
    ['GET', 'http://evil/a.git/info/refs?service=git-upload-pack'],
    ['GET', '/a.git/info/refs?service=git-upload-pack&service=git-receive-pack'],
    ['GET', '/a b.git/info/refs?service=git-upload-pack'],
    ['GET', `/${'a/'.repeat(5000)}info/refs?service=git-upload-pack`],
  ])('refuses %s %s', (method, path) => {
    expect(() => classifyHttpRequest(method, path)).toThrow(UnsupportedRequestError);
  });

  it('rejects unknown services', () => {
    expect(() => classifyHttpRequest('GET', '/a.git/info/refs?service=git-shell')).toThrow(UnknownServiceError);
    expect(() => classifyHttpRequest('GET', '/a.git/info/refs?service=')).toThrow(UnknownServiceError);
  });
});

describe('parseGitDaemonRequest', () => {
  const req = (s: string) => Buffer.from(s, 'utf8');

  it('parses the examples of gitprotocol-pack', () => {
    expect(parseGitDaemonRequest(req('git-upload-pack /project.git\0host=myserver.com\0'))).toEqual({
      service: 'git-upload-pack',
      repo: 'project.git',
      host: 'myserver.com',
      protocolVersion: 0,
      extraParams: [],
    });
    expect(parseGitDaemonRequest(req('git-upload-pack /project.git\0host=myserver.com\0\0version=1\0'))).toEqual({
      service: 'git-upload-pack',
      repo: 'project.git',
      host: 'myserver.com',
      protocolVersion: 1,
      extraParams: ['version=1'],
    });
  });

  it('handles ports, missing host, extra parameters without host, and old clients', () => {
    expect(parseGitDaemonRequest(req('git-receive-pack /a/b\0host=h:9418\0\0version=2\0foo\0')).protocolVersion).toBe(2);
    expect(parseGitDaemonRequest(req('git-receive-pack /a/b\0host=h:9418\0')).host).toBe('h:9418');
    expect(parseGitDaemonRequest(req('git-upload-pack /a\0\0version=2\0'))).toEqual({
      service: 'git-upload-pack',
      repo: 'a.git',
      protocolVersion: 2,
      extraParams: ['version=2'],
    });
    expect(parseGitDaemonRequest(req('git-upload-pack /a.git\n')).repo).toBe('a.git');
    expect(parseGitDaemonRequest(req('git-upload-archive /~/a\0host=[::1]:9418\0')).host).toBe('[::1]:9418');
  });

  it.each<[string, Buffer, new (...a: never[]) => Error]>([
    ['an unknown service', req('git-shell /a\0host=h\0'), UnknownServiceError],
    ['no path', req('git-upload-pack\0host=h\0'), ProtocolSyntaxError],
    ['an empty request', req(''), ProtocolSyntaxError],
    ['a relative escape', req('git-upload-pack /../etc\0host=h\0'), InvalidRepositoryNameError],
    ['a ~user path', req('git-upload-pack /~root/x\0host=h\0'), InvalidRepositoryNameError],
    ['a bad host', req('git-upload-pack /a\0host=h/x\0'), ProtocolSyntaxError],
    ['garbage instead of the separator', req('git-upload-pack /a\0host=h\0junk\0'), ProtocolSyntaxError],
    ['invalid UTF-8', Buffer.from([...req('git-upload-pack /a'), 0xff]), ProtocolSyntaxError],
    ['an option as an extra parameter', req('git-upload-pack /a\0host=h\0\0--upload-pack=id\0'), ProtocolSyntaxError],
    ['an option after version=2', req('git-upload-pack /a\0\0version=2\0-c\0'), ProtocolSyntaxError],
    ['a space in an extra parameter', req('git-upload-pack /a\0\0version=2 x\0'), ProtocolSyntaxError],
    ['a control character in an extra parameter', req('git-upload-pack /a\0\0version=\x012\0'), ProtocolSyntaxError],
    ['extra parameters over 256 characters', req(`git-upload-pack /a\0\0${'k=v:'.repeat(64)}x\0`), ProtocolSyntaxError],
  ])('rejects %s', (_what, payload, error) => {
    expect(() => parseGitDaemonRequest(payload)).toThrow(error);
  });
});

describe('isValidGitProtocol (GIT_PROTOCOL over SSH, git:// extra parameters)', () => {
  it.each(['version=2', 'version=1', 'version=2:object-format=sha256', 'foo', 'a.b_c-d=', 'x'.repeat(256)])('accepts %s', (value) => {
    expect(isValidGitProtocol(value)).toBe(true);
  });
  it.each(['', '--upload-pack=id', 'version=2:--upload-pack=touch', '-c', '=2', 'version=2:', 'version=2 ', 'a=b=c', 'a;b', 'v=$(id)', 'x'.repeat(257)])(
    'refuses %j',
    (value) => {
      expect(isValidGitProtocol(value)).toBe(false);
    },
  );
});

describe('parseSshCommand', () => {
  it.each([
    ["git-upload-pack 'repo.git'", 'git-upload-pack', 'repo.git'],
    ["git-upload-pack '/repo.git'", 'git-upload-pack', 'repo.git'],
    ["git-receive-pack '~/repo.git'", 'git-receive-pack', 'repo.git'],
    ["git-upload-archive 'team/app'", 'git-upload-archive', 'team/app.git'],
    ["git upload-pack 'team/app.git'", 'git-upload-pack', 'team/app.git'],
    ["git receive-pack '/x'", 'git-receive-pack', 'x.git'],
    ['git-upload-pack team/app.git', 'git-upload-pack', 'team/app.git'],
    ['git-upload-pack /team/app.git', 'git-upload-pack', 'team/app.git'],
    ["git-upload-pack  'a'", 'git-upload-pack', 'a.git'],
    ["git-upload-pack 'caf\u00e9'", 'git-upload-pack', 'caf\u00e9.git'],
  ])('%s', (cmd, service, repo) => {
    expect(parseSshCommand(cmd)).toEqual({ service, repo });
  });

  it("sq_quote's '\\'' and '\\!' are dequoted (git's quote.c), then refused by the name rule", () => {
    expect(() => parseSshCommand("git-upload-pack 'it'\\''s'")).toThrow(InvalidRepositoryNameError);
    expect(() => parseSshCommand("git-upload-pack 'a'\\!'b'")).toThrow(InvalidRepositoryNameError);
  });

  it.each([
    ["git-upload-pack '--help'", InvalidCommandError],
    ['git-upload-pack --help', InvalidCommandError],
    ["git-upload-pack '-u' 'x'", InvalidCommandError],
    ["git-upload-pack 'repo'; touch /tmp/x", InvalidCommandError],
    ["git-upload-pack 'repo';touch /tmp/x", InvalidCommandError],
    ['git-upload-pack repo;touch', InvalidCommandError],
    ["git-upload-pack 'repo' && id", InvalidCommandError],
    ['git-upload-pack repo extra', InvalidCommandError],
    ["git-upload-pack 'a' 'b'", InvalidCommandError],
    ['git-upload-pack', InvalidCommandError],
    ['git-upload-pack ', InvalidCommandError],
    ['', InvalidCommandError],
    ["sh -c 'git-upload-pack repo'", InvalidCommandError],
    ['bash', InvalidCommandError],
    ["/usr/bin/git-upload-pack 'repo'", InvalidCommandError],
    ["git-upload-pack 'repo'\ntouch x", InvalidCommandError],
    ["git-upload-pack\t'repo'", InvalidCommandError],
    ['git-upload-pack $(id)', InvalidCommandError],
    ['git-upload-pack `id`', InvalidCommandError],
    ['git-upload-pack repo|nc', InvalidCommandError],
    ['git-upload-pack repo>x', InvalidCommandError],
    ['git-upload-pack "repo"', InvalidCommandError],
    ["git-upload-pack 'unterminated", InvalidCommandError],
    ["git-upload-pack 'a'b", InvalidCommandError],
    ["git-upload-pack 'a'\\x'b'", InvalidCommandError],
    ["git-upload-pack 'a\0b'", InvalidCommandError],
    [`git-upload-pack '${'a'.repeat(5000)}'`, InvalidCommandError],
    ['git', InvalidCommandError],
    ["git-shell 'repo'", UnknownServiceError],
    ["git-upload-packs 'repo'", UnknownServiceError],
    ["git status 'repo'", UnknownServiceError],
    ["git-upload-pack '../etc'", InvalidRepositoryNameError],
    ["git-upload-pack '~alice/project.git'", InvalidRepositoryNameError],
    ["git-upload-pack ''", InvalidRepositoryNameError],
    ["git-upload-pack 'a\nb'", InvalidRepositoryNameError],
    ["git-upload-pack 'a;b'", InvalidRepositoryNameError],
  ])('rejects %j', (cmd, error) => {
    expect(() => parseSshCommand(cmd)).toThrow(error);
  });
});
