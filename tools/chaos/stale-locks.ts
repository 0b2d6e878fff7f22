/**
 * What an operator does after a Git host crashed (issue 8's backend-kill and
 * backend-unreachable faults): git takes a ref's lock by creating
 * `<ref>.lock` and renames it over the ref when done; a receive-pack killed
 * in between leaves the lock, and every later update of that ref fails
 * ("cannot lock ref … File exists", or "atomic transaction failed" for an
 * atomic push) until someone removes it. githa cannot: the backends are
 * stock servers it reaches only through Git's protocols
 * (docs/operations.md, "A backend crashed during a push"). The harness
 * removes them the way the runbook says: once no process works in the
 * backend's repositories any more, and only lock files of refs.
 */
import { readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Processes whose working directory is under `dir` (git upload-pack and receive-pack run in the repository). */
function processesIn(dir: string): number[] {
  const pids: number[] = [];
  const prefix = dir.endsWith(sep) ? dir : dir + sep;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cwd = readlinkSync(`/proc/${name}/cwd`);
      if (cwd === dir || cwd.startsWith(prefix)) pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Every `*.lock` under a repository's refs/, and its packed-refs.lock. */
function refLocks(repos: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, inRefs: boolean): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name === 'objects' || e.name === 'hooks') continue;
        walk(path, inRefs || e.name === 'refs');
      } else if ((inRefs && e.name.endsWith('.lock')) || e.name === 'packed-refs.lock') {
        out.push(path);
      }
    }
  };
  walk(repos, false);
  return out;
}

/**
 * Waits (at most `waitMs`) until no process works under `repos`, then
 * removes the ref locks left there. Returns how many it removed; none when a
 * process is still at work (its lock may be live).
 */
export async function removeStaleRefLocks(repos: string, waitMs = 5_000): Promise<number> {
  const until = performance.now() + waitMs;
  while (processesIn(repos).length > 0) {
    if (performance.now() > until) return 0;
    await sleep(50);
  }
  const locks = refLocks(repos);
  for (const path of locks) rmSync(path, { force: true });
  return locks.length;
}
