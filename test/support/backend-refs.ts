/**
 * Reads a backend's bare repository straight from disk, to check what githa
 * did without going through githa.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { refsChecksum } from '../../src/cluster/checksum.js';
import type { DevBackend } from '../../src/demo/cluster.js';

const execFileP = promisify(execFile);

/** Runs `git --git-dir <backend's copy of repo> …` with a clean environment. */
export async function gitDir(backend: DevBackend, repo: string, args: string[]): Promise<string> {
  const { stdout } = await execFileP('git', ['--git-dir', backend.repoPath(repo), ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_CONFIG_NOSYSTEM: '1', HOME: backend.root },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** refname → object id on a backend's disk (annotated tags: the tag object's id). */
export async function diskRefs(backend: DevBackend, repo: string): Promise<Record<string, string>> {
  const out = await gitDir(backend, repo, ['for-each-ref', '--format=%(objectname) %(refname)']);
  const refs: Record<string, string> = {};
  for (const line of out.split('\n')) {
    if (!line) continue;
    const [oid, name] = line.split(' ');
    refs[name!] = oid!;
  }
  return refs;
}

/** Every ref with its type and what an annotated tag peels to: equal output = equal refs and tag objects. */
export async function fullRefs(backend: DevBackend, repo: string): Promise<string> {
  return gitDir(backend, repo, ['for-each-ref', '--format=%(objectname) %(objecttype) %(*objectname) %(refname)']);
}

/** githa's checksum of a set of refs (src/cluster/checksum.ts). */
export function checksumOf(refs: Record<string, string>): string {
  return refsChecksum(Object.entries(refs).map(([name, oid]) => ({ name, oid })));
}

/** One ref in a backend's bare repository on disk (undefined when absent). */
export async function refOnDisk(backend: DevBackend, repo: string, ref: string): Promise<string | undefined> {
  try {
    return (await gitDir(backend, repo, ['rev-parse', '--verify', '--quiet', ref])).trim() || undefined;
  } catch {
    return undefined;
  }
}
