/**
 * Third-party Git clients driven against githa (issue 17's acceptance):
 * libgit2 through pygit2 and Dulwich (Debian's python3-pygit2 and
 * python3-dulwich, for /usr/bin/python3: `python3` on PATH may be another
 * interpreter without them), JGit (Debian's libjgit-java / jgit-cli, run with
 * `java` directly: the packaged `jgit` script's class path lacks the LFS and
 * Apache HTTP jars its Main loads), and isomorphic-git in-process (the test
 * imports it itself).
 *
 * Each client runs in its own HOME (nothing of the caller's ~/.ssh or
 * ~/.gitconfig leaks in), always through execFile, never a shell. A client
 * script clones URL into DEST, commits one file and pushes `main` to a new
 * branch, then prints `cloned <head id>` and `pushed <commit id>`.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SYSTEM_PYTHON = '/usr/bin/python3';
const JAVA_LIB = '/usr/share/java';
/** JGit's command line and what it needs at run time (HTTP through Apache HttpClient, SSH through JSch). */
const JGIT_CLASSPATH = [
  'org.eclipse.jgit.pgm.jar',
  'org.eclipse.jgit.jar',
  'org.eclipse.jgit.lfs.jar',
  'org.eclipse.jgit.http.apache.jar',
  'httpclient.jar',
  'httpcore.jar',
  'commons-logging.jar',
  'commons-codec.jar',
  'gson.jar',
  'jsch.jar',
  'jzlib.jar',
  'args4j.jar',
  'slf4j-api.jar',
  'slf4j-nop.jar',
]
  .map((jar) => join(JAVA_LIB, jar))
  .join(':');

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a program without a shell; rejects with its output when it fails. */
export function run(file: string, args: string[], options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
        else resolve({ stdout, stderr });
      },
    );
  });
}

/** A private HOME with a .gitconfig naming the committer (JGit and libgit2 read it). */
export function clientHome(baseDir: string, name: string): string {
  mkdirSync(baseDir, { recursive: true });
  const home = mkdtempSync(join(baseDir, `${name}-home-`));
  writeFileSync(join(home, '.gitconfig'), `[user]\n\tname = ${name} tester\n\temail = ${name}@githa.invalid\n`);
  return home;
}

/** The environment of a client process: PATH and HOME only. */
export function cleanEnv(home: string): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
}

/** What a client script printed: the id it cloned and the commit it pushed. */
export function parseReport(stdout: string): { cloned: string; pushed: string } {
  const cloned = /^cloned ([0-9a-f]{40})$/m.exec(stdout)?.[1];
  const pushed = /^pushed ([0-9a-f]{40})$/m.exec(stdout)?.[1];
  if (!cloned || !pushed) throw new Error(`client did not report its clone and push:\n${stdout}`);
  return { cloned, pushed };
}

// ---- libgit2 (pygit2) -----------------------------------------------------------

const PYGIT2_SCRIPT = `
import binascii, sys, pygit2
from pygit2.ffi import ffi, C
url, dest, branch, key, pub, hostkeys = sys.argv[1:7]
# SHA-256 of each host key blob the client trusts (comma-separated hex; empty for HTTP).
trusted = set(hostkeys.split(",")) if hostkeys else set()

# pygit2 1.11 hands RemoteCallbacks.certificate_check no certificate, and its
# pass-through accepts any SSH host key: check the key's hash
# that libgit2 gives its C callback instead. pygit2's cdef of git_cert_hostkey
# stops at hash_sha1; libgit2 1.5's struct: cert_type (int), type (int, GIT_CERT_SSH_*
# flags), hash_md5[16] at 8, hash_sha1[20] at 24, hash_sha256[32] at 44.
GIT_CERT_SSH_SHA256 = 1 << 2

def check_host_key(cert, valid, host):
    if cert.cert_type != C.GIT_CERT_HOSTKEY_LIBSSH2:
        return 0 if valid else C.GIT_ECERTIFICATE
    raw = ffi.buffer(ffi.cast("unsigned char *", cert), 76)
    if not int.from_bytes(raw[4:8], sys.byteorder) & GIT_CERT_SSH_SHA256:
        return C.GIT_ECERTIFICATE
    seen = binascii.hexlify(raw[44:76]).decode()
    if seen not in trusted:
        sys.stderr.write("untrusted host key %s for %s\\n" % (seen, ffi.string(host).decode()))
        return C.GIT_ECERTIFICATE
    return 0

# An exception in the callback must refuse the host, not return 0 (accept).
@ffi.def_extern(name="_certificate_cb", error=C.GIT_ECERTIFICATE)
def _certificate_cb(cert, valid, host, payload):
    return check_host_key(cert, valid, host)

class Callbacks(pygit2.RemoteCallbacks):
    def __init__(self):
        super().__init__()
        self.rejected = []
    def credentials(self, url, username_from_url, allowed_types):
        if key and allowed_types & pygit2.GIT_CREDENTIAL_SSH_KEY:
            return pygit2.Keypair(username_from_url or "git", pub, key, "")
        raise RuntimeError("no credentials for %s (allowed %d)" % (url, allowed_types))
    def push_update_reference(self, refname, message):
        if message is not None:
            self.rejected.append("%s: %s" % (refname, message))

repo = pygit2.clone_repository(url, dest, callbacks=Callbacks())
print("cloned", repo.head.target)
with open(dest + "/pygit2.txt", "w") as f:
    f.write("written by libgit2 " + pygit2.LIBGIT2_VERSION + "\\n")
repo.index.add("pygit2.txt")
repo.index.write()
sig = pygit2.Signature("pygit2 tester", "pygit2@githa.invalid")
oid = repo.create_commit("HEAD", sig, sig, "commit by pygit2", repo.index.write_tree(), [repo.head.target])
callbacks = Callbacks()
repo.remotes["origin"].push(["refs/heads/main:refs/heads/" + branch], callbacks=callbacks)
if callbacks.rejected:
    sys.exit("push rejected: " + "; ".join(callbacks.rejected))
print("pushed", oid)
`;

// ---- Dulwich ----------------------------------------------------------------------

const DULWICH_SCRIPT = `
import sys
from dulwich import porcelain
from dulwich.client import get_transport_and_path
url, dest, branch = sys.argv[1:4]

repo = porcelain.clone(url, dest, checkout=True, errstream=sys.stderr.buffer)
print("cloned", repo.head().decode())
with open(dest + "/dulwich.txt", "w") as f:
    f.write("written by dulwich\\n")
porcelain.add(repo, paths=[dest + "/dulwich.txt"])
who = b"dulwich tester <dulwich@githa.invalid>"
sha = porcelain.commit(repo, message=b"commit by dulwich", author=who, committer=who)
target = b"refs/heads/" + branch.encode()
# porcelain.push only prints a refused ref; the client's own result is checked here.
client, path = get_transport_and_path(url)
result = client.send_pack(path, lambda refs: {**refs, target: sha}, generate_pack_data=repo.generate_pack_data)
errors = {ref: err for ref, err in (result.ref_status or {}).items() if err is not None}
if errors:
    sys.exit("push rejected: %r" % errors)
print("pushed", sha.decode())
`;

/** SHA-256 of a public key's blob (what libgit2 reports of an SSH host key), from its .pub line. */
export function hostKeySha256(publicKeyLine: string): string {
  const blob = publicKeyLine.trim().split(/\s+/)[1];
  if (!blob) throw new Error(`not a public key line: ${publicKeyLine}`);
  return createHash('sha256').update(Buffer.from(blob, 'base64')).digest('hex');
}

export interface PythonClients {
  pygit2: string;
  dulwich: string;
}

/** Writes the Python client scripts into `dir`. */
export function writePythonClients(dir: string): PythonClients {
  mkdirSync(dir, { recursive: true });
  const scripts = { pygit2: join(dir, 'pygit2_client.py'), dulwich: join(dir, 'dulwich_client.py') };
  writeFileSync(scripts.pygit2, PYGIT2_SCRIPT);
  writeFileSync(scripts.dulwich, DULWICH_SCRIPT);
  return scripts;
}

/** "pygit2 1.11.1 (libgit2 1.5.0)", "dulwich 0.21.2". */
export async function pythonClientVersions(): Promise<{ pygit2: string; dulwich: string }> {
  const { stdout } = await run(SYSTEM_PYTHON, [
    '-c',
    'import pygit2, dulwich; print("pygit2 %s (libgit2 %s)" % (pygit2.__version__, pygit2.LIBGIT2_VERSION)); print("dulwich " + ".".join(map(str, dulwich.__version__)))',
  ]);
  const [pygit2, dulwich] = stdout.trim().split('\n');
  return { pygit2: pygit2!, dulwich: dulwich! };
}

// ---- JGit --------------------------------------------------------------------------

/** Runs JGit's command line with `home` as its user.home (Java takes it from passwd, not $HOME). */
export function jgit(home: string, args: string[], cwd?: string): Promise<RunResult> {
  return run('java', [`-Duser.home=${home}`, '-cp', JGIT_CLASSPATH, 'org.eclipse.jgit.pgm.Main', ...args], { cwd, env: cleanEnv(home) });
}

/**
 * The ~/.ssh of a JGit user: JGit reads ~/.ssh/config for the identity and
 * host key policy, and gives JSch ~/.ssh/known_hosts.
 */
export function jgitSshConfig(home: string, options: { port: number; keyPath: string; knownHosts: string }): void {
  const ssh = join(home, '.ssh');
  mkdirSync(ssh, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(ssh, 'config'),
    `Host 127.0.0.1\n  Port ${options.port}\n  User git\n  IdentityFile ${options.keyPath}\n  StrictHostKeyChecking yes\n`,
  );
  writeFileSync(join(ssh, 'known_hosts'), options.knownHosts);
}
