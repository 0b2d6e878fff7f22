/**
 * Request classification: which service a client asks for, on which
 * repository, over which protocol version — for each transport githa fronts
 * (gitprotocol-http smart HTTP, gitprotocol-pack "Git Transport" and "SSH
 * Transport", gitprotocol-pack "Extra Parameters" / gitprotocol-v2).
 */
import {
  InvalidCommandError,
  InvalidRepositoryNameError,
  ProtocolSyntaxError,
  UnknownServiceError,
  UnsupportedRequestError,
} from '../errors.js';
import { decodeUtf8Strict } from './pkt-line.js';
import { canonicalRepositoryName } from './repository-name.js';

export type Service = 'git-upload-pack' | 'git-receive-pack' | 'git-upload-archive';
export type ProtocolVersion = 0 | 1 | 2;

export const SERVICES: readonly Service[] = ['git-upload-pack', 'git-receive-pack', 'git-upload-archive'];

/** Exactly one of the three service names (case-sensitive, like git-daemon). */
export function parseService(s: string): Service {
  if ((SERVICES as readonly string[]).includes(s)) return s as Service;
  throw new UnknownServiceError(`unknown service ${JSON.stringify(s.slice(0, 64))}`);
}

/** Only git-receive-pack changes a repository. */
export function isWrite(service: Service): boolean {
  return service === 'git-receive-pack';
}

/**
 * The protocol version a client asked for in Extra Parameters (the
 * Git-Protocol header, GIT_PROTOCOL, git:// extra parameters):
 * colon-separated "key=value" / "key" items, unknown keys ignored. Like git's
 * determine_protocol_version_server(), the highest "version=N" wins; only
 * N in 0..2 counts. Absent or unparseable: 0.
 */
export function protocolVersionFrom(value: string | undefined): ProtocolVersion {
  let version: ProtocolVersion = 0;
  if (value === undefined) return version;
  for (const item of value.split(':')) {
    if (item === 'version=1' && version < 1) version = 1;
    else if (item === 'version=2') version = 2;
  }
  return version;
}

/** One item of a GIT_PROTOCOL value: `key` or `key=value`, the key starting with a letter or digit. */
const PROTOCOL_ITEM = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:=[A-Za-z0-9._-]*)?$/;

/**
 * Whether githa passes a GIT_PROTOCOL value (an SSH client's environment, a
 * git:// request's extra parameters joined by ':') on to a backend:
 * `:`-separated `key` / `key=value` items (gitprotocol-common "Extra
 * Parameters"; git sends `version=2`), 256 characters at most. Option or
 * shell syntax (`--upload-pack=id`), spaces and control characters never
 * reach a backend, whose git daemon or sshd hands the value to git as
 * GIT_PROTOCOL (docs/security.md "What reaches a backend").
 */
export function isValidGitProtocol(value: string): boolean {
  return value.length > 0 && value.length <= 256 && value.split(':').every((item) => PROTOCOL_ITEM.test(item));
}

// ---- smart HTTP (gitprotocol-http) ----------------------------------------------

export type HttpGitRequest =
  | { kind: 'advertisement'; repo: string; service: Service }
  | { kind: 'rpc'; repo: string; service: Service };

const DUMB_HTTP = 'dumb HTTP is not supported; use a smart-HTTP client';

/** Files only a dumb-HTTP client fetches (gitprotocol-http "Dumb Clients"). */
const DUMB_PATH_RE =
  /\/(?:HEAD|info\/refs|info\/packs|objects\/info\/[^/]+|objects\/[0-9a-f]{2}\/[0-9a-f]{38,62}|objects\/pack\/pack-[0-9a-f]{40,64}\.(?:pack|idx))$/;

/**
 * Percent-decodes a URL path once, as UTF-8. Malformed escapes, encoded "/"
 * (which would let one path segment pose as two) and invalid UTF-8 are
 * rejected (InvalidRepositoryNameError: the repository part is what they break).
 */
function decodePath(raw: string): string {
  if (!/^[\x21-\x7e]*$/.test(raw)) throw new UnsupportedRequestError('malformed request path');
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x25) {
      bytes.push(c);
      continue;
    }
    const hex = raw.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new InvalidRepositoryNameError('invalid repository name: malformed percent-encoding');
    const b = parseInt(hex, 16);
    if (b === 0x2f) throw new InvalidRepositoryNameError('invalid repository name: encoded "/"');
    bytes.push(b);
    i += 2;
  }
  try {
    return decodeUtf8Strict(Uint8Array.from(bytes), 'path');
  } catch {
    throw new InvalidRepositoryNameError('invalid repository name: not valid UTF-8');
  }
}

/** The `service` query parameter (gitprotocol-http: exactly one, "service=<name>"). */
function queryService(query: string | undefined): string | undefined {
  if (query === undefined) return undefined;
  const values = query
    .split('&')
    .filter((p) => p === 'service' || p.startsWith('service='))
    .map((p) => p.slice('service='.length));
  if (values.length > 1) throw new UnsupportedRequestError('more than one service parameter');
  return values[0];
}

/**
 * Classifies a smart-HTTP request from its method and raw (still
 * percent-encoded) path and query; a mount prefix must already be stripped.
 */
export function classifyHttpRequest(method: string, rawPathAndQuery: string): HttpGitRequest {
  if (rawPathAndQuery.length > 8192) throw new UnsupportedRequestError('request path too long');
  const q = rawPathAndQuery.indexOf('?');
  const path = decodePath(q < 0 ? rawPathAndQuery : rawPathAndQuery.slice(0, q));
  const query = q < 0 ? undefined : rawPathAndQuery.slice(q + 1);
  if (!path.startsWith('/')) throw new UnsupportedRequestError('request path must start with "/"');

  const rpc = /\/(git-upload-pack|git-receive-pack|git-upload-archive)$/.exec(path);
  if (rpc !== null) {
    if (method !== 'POST') throw new UnsupportedRequestError(`method ${method.slice(0, 16)} not allowed here`);
    const repo = canonicalRepositoryName(path.slice(0, rpc.index));
    return { kind: 'rpc', repo, service: parseService(rpc[1] as string) };
  }
  if (path.endsWith('/info/refs')) {
    const service = queryService(query);
    // Without ?service= this is a dumb client's request (gitprotocol-http "Smart Clients").
    if (service === undefined) throw new UnsupportedRequestError(DUMB_HTTP);
    if (method !== 'GET') throw new UnsupportedRequestError(`method ${method.slice(0, 16)} not allowed here`);
    const repo = canonicalRepositoryName(path.slice(0, -'/info/refs'.length));
    return { kind: 'advertisement', repo, service: parseService(service) };
  }
  if ((method === 'GET' || method === 'HEAD') && DUMB_PATH_RE.test(path)) {
    throw new UnsupportedRequestError(DUMB_HTTP);
  }
  throw new UnsupportedRequestError('not a Git smart-HTTP request');
}

// ---- git:// (gitprotocol-pack "Git Transport") -----------------------------------

export interface GitDaemonRequest {
  service: Service;
  repo: string;
  /** The host parameter ("host[:port]"), for name-based virtual hosting. */
  host?: string;
  protocolVersion: ProtocolVersion;
  extraParams: string[];
}

const HOST_RE = /^[A-Za-z0-9._\-[\]:]{1,262}$/;

/**
 * Parses the payload of git://'s first pkt-line:
 *
 *   git-proto-request = request-command SP pathname NUL
 *                       [ host-parameter NUL ] [ NUL extra-parameters ]
 *
 * Like git-daemon, a trailing LF on the command is tolerated (old clients).
 */
export function parseGitDaemonRequest(payload: Buffer): GitDaemonRequest {
  const nul = payload.indexOf(0);
  let head = decodeUtf8Strict(nul < 0 ? payload : payload.subarray(0, nul), 'git:// request');
  if (head.endsWith('\n')) head = head.slice(0, -1);
  const sp = head.indexOf(' ');
  if (sp < 0) throw new ProtocolSyntaxError('git:// request without a path');
  const service = parseService(head.slice(0, sp));
  const repo = canonicalRepositoryName(head.slice(sp + 1));

  const request: GitDaemonRequest = { service, repo, protocolVersion: 0, extraParams: [] };
  if (nul < 0) return request;
  const params = decodeUtf8Strict(payload.subarray(nul + 1), 'git:// request').split('\0');
  // A final NUL terminates the last string; drop the empty tail it leaves.
  if (params.length > 1 && params[params.length - 1] === '') params.pop();
  let i = 0;
  const first = params[0] ?? '';
  if (first.toLowerCase().startsWith('host=')) {
    const host = first.slice(5);
    if (!HOST_RE.test(host)) throw new ProtocolSyntaxError('invalid host parameter in git:// request');
    request.host = host;
    i = 1;
  }
  if (i < params.length) {
    // Extra parameters follow an empty string (the second NUL); anything else is invalid (git-daemon dies).
    if (params[i] !== '') throw new ProtocolSyntaxError('invalid git:// request parameters');
    request.extraParams = params.slice(i + 1).filter((p) => p.length > 0);
    // The same rule as SSH's GIT_PROTOCOL: these go to the backend as its GIT_PROTOCOL.
    if (request.extraParams.length > 0 && !isValidGitProtocol(request.extraParams.join(':'))) {
      throw new ProtocolSyntaxError('invalid extra parameter in git:// request (expected key or key=value, such as version=2)');
    }
  }
  request.protocolVersion = protocolVersionFrom(request.extraParams.join(':'));
  return request;
}

// ---- SSH (gitprotocol-pack "SSH Transport") --------------------------------------

export interface SshGitCommand {
  service: Service;
  repo: string;
}

export const MAX_SSH_COMMAND_BYTES = 4096;

/** Characters allowed in an unquoted word: nothing a shell would interpret. */
const BARE_WORD_RE = /^[A-Za-z0-9._/~+@\-\p{L}\p{M}\p{N}]+$/u;

/**
 * Reads one word at `start`: a run of bare characters or of single-quoted
 * parts, following git's sq_dequote(): inside quotes everything is literal,
 * and between two quoted parts only \' and \! may appear (sq_quote writes a
 * quote as '\'' and "!" as '\!'). Returns the word and where it ended.
 */
function readWord(cmd: string, start: number): { word: string; end: number } {
  let i = start;
  let word = '';
  if (cmd[i] !== "'") {
    while (i < cmd.length && cmd[i] !== ' ') i++;
    const bare = cmd.slice(start, i);
    if (!BARE_WORD_RE.test(bare)) throw new InvalidCommandError('unquoted shell metacharacter in command');
    return { word: bare, end: i };
  }
  for (;;) {
    // cmd[i] is an opening quote.
    const close = cmd.indexOf("'", i + 1);
    if (close < 0) throw new InvalidCommandError('unterminated quote in command');
    word += cmd.slice(i + 1, close);
    i = close + 1;
    if (cmd[i] === '\\' && (cmd[i + 1] === "'" || cmd[i + 1] === '!') && cmd[i + 2] === "'") {
      word += cmd[i + 1];
      i += 2;
      continue;
    }
    if (i < cmd.length && cmd[i] !== ' ') throw new InvalidCommandError('unexpected character after quoted argument');
    return { word, end: i };
  }
}

/** Splits a command into words separated by single or repeated spaces. */
function splitWords(cmd: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < cmd.length) {
    if (cmd[i] === ' ') {
      i++;
      continue;
    }
    const { word, end } = readWord(cmd, i);
    words.push(word);
    i = end;
  }
  return words;
}

/**
 * Parses the command an SSH client asks to execute: `git-upload-pack 'path'`
 * (or git-receive-pack / git-upload-archive, or the `git upload-pack` spelling)
 * with exactly one, optionally single-quoted, path argument.
 */
export function parseSshCommand(cmd: string): SshGitCommand {
  if (Buffer.byteLength(cmd, 'utf8') > MAX_SSH_COMMAND_BYTES) throw new InvalidCommandError('command too long');
  if (cmd.includes('\0')) throw new InvalidCommandError('NUL in command');
  const words = splitWords(cmd);
  let name = words.shift();
  if (name === 'git') {
    const sub = words.shift();
    if (sub === undefined) throw new InvalidCommandError('not a Git command');
    name = `git-${sub}`;
  }
  if (name === undefined || !/^git-[a-z-]+$/.test(name)) throw new InvalidCommandError('not a Git command');
  const service = parseService(name);
  if (words.length !== 1) throw new InvalidCommandError('expected exactly one repository argument');
  const arg = words[0] as string;
  if (arg.startsWith('-')) throw new InvalidCommandError('argument looks like an option');
  return { service, repo: canonicalRepositoryName(arg) };
}
