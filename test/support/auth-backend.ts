/**
 * A second stock HTTP front for a dev backend's repositories: lighttpd with
 * mod_auth (Basic, a plain user file) in front of the same `git http-backend`,
 * protecting the URLs that match `protect` — as hosts do, e.g. the whole of a
 * private repository, or only `git-receive-pack` (git-http-backend(1)
 * "EXAMPLES"). githa is pointed at it instead of the backend's open lighttpd.
 *
 *   const front = await startAuthBackend(cluster, cluster.backends[0], { protect: '/git-receive-pack$', users: { alice: 'pw' } });
 *   startGitha(cluster, { backends: { b1: { http: front.httpUrl, httpAuth: … } } });
 *
 * Stopped when the test finishes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import type { DevBackend, DevCluster } from '../../src/demo/cluster.js';
import { GIT_HTTP_BACKEND } from '../../src/demo/backend.js';
import { LOCALHOST, PortServer, minimalEnv } from '../../src/demo/process.js';

export interface AuthBackendOptions {
  /** lighttpd regular expression on the URL path: the requests that need credentials. */
  protect: string;
  /** user → password (mod_authn_file "plain"). */
  users: Record<string, string>;
  realm?: string;
}

export interface AuthBackend {
  /** 'http://127.0.0.1:P/git/' */
  readonly httpUrl: string;
  readonly logFile: string;
}

let counter = 0;

export async function startAuthBackend(cluster: DevCluster, backend: DevBackend, options: AuthBackendOptions): Promise<AuthBackend> {
  const dir = join(cluster.dir, `${backend.id}-auth-${++counter}`);
  const home = join(dir, 'home');
  const docroot = join(dir, 'docroot');
  const uploadDir = join(dir, 'tmp');
  for (const d of [home, docroot, uploadDir]) mkdirSync(d, { recursive: true });
  const userFile = join(dir, 'users');
  writeFileSync(userFile, Object.entries(options.users).map(([u, p]) => `${u}:${p}\n`).join(''));
  const untrack = new Map<number, () => void>();
  const logFile = join(dir, 'lighttpd.log');
  const server = new PortServer({
    name: `${backend.id}-auth-http`,
    logFile,
    tracker: { add: (pid) => untrack.set(pid, cluster.track(pid)), remove: (pid) => untrack.get(pid)?.() },
    build: (port) => {
      const config = join(dir, 'lighttpd.conf');
      writeFileSync(
        config,
        `server.modules = ( "mod_auth", "mod_authn_file", "mod_alias", "mod_setenv", "mod_cgi", "mod_accesslog" )
server.bind = "${LOCALHOST}"
server.port = ${port}
server.document-root = "${docroot}"
server.upload-dirs = ( "${uploadDir}" )
accesslog.filename = "/dev/stderr"
server.stream-request-body = 0
server.max-request-size = 0
server.stream-response-body = 1
auth.backend = "plain"
auth.backend.plain.userfile = "${userFile}"
$HTTP["url"] =~ ${JSON.stringify(options.protect)} {
  auth.require = ( "" => ( "method" => "basic", "realm" => ${JSON.stringify(options.realm ?? 'git')}, "require" => "valid-user" ) )
}
alias.url = ( "/git/" => "${GIT_HTTP_BACKEND}/" )
$HTTP["url"] =~ "^/git/" {
  cgi.assign = ( "" => "" )
  setenv.set-environment = (
    "GIT_PROJECT_ROOT" => "${backend.root}",
    "GIT_HTTP_EXPORT_ALL" => "1",
    "GIT_CONFIG_COUNT" => "1",
    "GIT_CONFIG_KEY_0" => "http.receivepack",
    "GIT_CONFIG_VALUE_0" => "true",
    "HOME" => "${home}",
    "PATH" => "/usr/local/bin:/usr/bin:/bin"
  )
}
`,
      );
      return { command: 'lighttpd', args: ['-D', '-f', config], env: minimalEnv({ HOME: home }), cwd: dir };
    },
  });
  await server.start();
  onTestFinished(() => server.stop('SIGKILL'));
  return { httpUrl: `http://${LOCALHOST}:${server.port}/git/`, logFile };
}
