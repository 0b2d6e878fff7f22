/**
 * Faults that change one backend's copy of one repository on disk behind
 * githa's back (issue 16; docs/chaos.md "Copy faults"), as a replaced disk, a
 * restore from an old backup, a host crash that lost its last ref update or
 * a user with shell access on the Git host would:
 *
 * - copy-wipe: `rm -rf` of the repository; the operator re-creates it empty
 *   a moment later (`git init --bare`, as the "missing on B" message says);
 * - copy-reinit: `rm -rf` + `git init --bare` at once;
 * - copy-rollback: one branch set back to its tip's parent (`update-ref`);
 * - copy-divergent: a new commit on a branch (`commit-tree` on the tip +
 *   `update-ref`), recorded so the checker can ask that it is never destroyed;
 * - copy-delete: `rm -rf`, left missing for seconds, then re-created empty.
 *
 * One fault at a time (faults.ts), so never all backends at once and at most
 * one copy per repository changed at a time, and only on a repository githa
 * has repaired since the last one (settled); never a copy that alone holds a
 * commit a copy-divergent fault added (pickCopy). Ref updates are compare-and-swap
 * (`update-ref <ref> <new> <old>`): a push landing meanwhile wins.
 */
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DevBackend } from '../../src/demo/cluster.js';
import { minimalEnv, run } from '../../src/demo/process.js';
import type { FaultKind, HistoryRecorder } from './history.js';
import type { Rng } from './rng.js';

export const COPY_FAULTS: readonly FaultKind[] = ['copy-wipe', 'copy-reinit', 'copy-rollback', 'copy-divergent', 'copy-delete'];

export interface CopyFaultContext {
  readonly backends: readonly DevBackend[];
  readonly repos: readonly string[];
  readonly rec: HistoryRecorder;
  readonly rng: Rng;
  /**
   * Whether githa has repaired the repository since the last copy fault: a
   * fault hits only such a one (one failure at a time, with its repair in
   * between: a second before the first is repaired is a double failure).
   */
  readonly settled?: (repo: string) => Promise<boolean>;
  /** The backends assigned to hold a repository (issue 22; every backend when absent or unknown): only their copies are changed. */
  readonly assigned?: (repo: string) => Promise<readonly string[] | undefined>;
  /** Repositories a copy fault or a move is working on (moves.ts): skipped, and marked while a fault runs. */
  readonly busy?: Set<string>;
}

export interface CopyFaultResult {
  readonly target: string;
  readonly repo: string;
  readonly detail?: string;
}

const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
const ENV = minimalEnv({
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: '/nonexistent',
  GIT_AUTHOR_NAME: 'chaos fault',
  GIT_AUTHOR_EMAIL: 'fault@githa.invalid',
  GIT_COMMITTER_NAME: 'chaos fault',
  GIT_COMMITTER_EMAIL: 'fault@githa.invalid',
});

const git = (gitDir: string, args: string[]): Promise<string> => run('git', ['--git-dir', gitDir, ...args], { env: ENV, timeoutMs: 30_000 });

/** Branches of a copy (refs/heads/* → oid), '' when the copy cannot be read. */
async function branches(gitDir: string): Promise<Map<string, string>> {
  const text = await git(gitDir, ['for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads/']).catch(() => '');
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [oid, ref] = line.trim().split(' ');
    if (oid && ref) out.set(ref, oid);
  }
  return out;
}

async function recreate(b: DevBackend, repo: string): Promise<void> {
  rmSync(b.repoPath(repo), { recursive: true, force: true });
  // The demo backend's own `git init --bare` + http.receivepack (src/demo/backend.ts).
  await b.createRepository(repo);
}

/**
 * A copy the fault may change: one that holds no commit a copy-divergent
 * fault added there which no other backend's ref reaches yet. Destroying
 * that copy (or rolling its branch back) would lose the commit by the
 * harness's own hand, before githa could keep it; the checker would blame
 * githa. Undefined when every copy is such a one.
 */
async function pickCopy(ctx: CopyFaultContext): Promise<{ b: DevBackend; repo: string } | undefined> {
  const { rng } = ctx;
  for (const [b, repo] of rng.shuffle(ctx.backends.flatMap((b) => ctx.repos.map((repo) => [b, repo] as const)))) {
    if (ctx.busy?.has(repo)) continue;
    const assigned = (await ctx.assigned?.(repo)) ?? ctx.backends.map((x) => x.id);
    if (!assigned.includes(b.id)) continue;
    if (ctx.settled && !(await ctx.settled(repo))) continue;
    const own = ctx.rec.divergent.filter((d) => d.repo === repo && d.backend === b.id);
    const others = ctx.backends.filter((x) => x !== b && assigned.includes(x.id));
    let safe = true;
    for (const d of own) if ((await refsReaching(others, repo, d.oid)).length === 0) safe = false;
    if (safe) return { b, repo };
  }
  return undefined;
}

export async function injectCopyFault(ctx: CopyFaultContext, kind: FaultKind): Promise<CopyFaultResult> {
  const picked = await pickCopy(ctx);
  // A move may have started on it while pickCopy looked (moves.ts marks it at once).
  if (!picked || ctx.busy?.has(picked.repo)) return { target: '-', repo: '-', detail: 'skipped: no repository is repaired since the last copy fault, or every copy holds a fault-added commit no other backend has yet' };
  const { b, repo } = picked;
  ctx.busy?.add(repo);
  try {
    return await inject(ctx, kind, b, repo);
  } finally {
    ctx.busy?.delete(repo);
  }
}

async function inject(ctx: CopyFaultContext, kind: FaultKind, b: DevBackend, repo: string): Promise<CopyFaultResult> {
  const { rng } = ctx;
  const gitDir = b.repoPath(repo);
  const at = { target: b.id, repo };
  switch (kind) {
    case 'copy-wipe': {
      rmSync(gitDir, { recursive: true, force: true });
      const ms = rng.int(200, 1_000);
      await sleep(ms);
      await b.createRepository(repo);
      return { ...at, detail: `rm -rf, re-created empty after ${ms} ms` };
    }
    case 'copy-reinit': {
      await recreate(b, repo);
      return { ...at, detail: 'rm -rf + git init --bare' };
    }
    case 'copy-delete': {
      rmSync(gitDir, { recursive: true, force: true });
      const ms = rng.int(3_000, 8_000);
      await sleep(ms);
      await b.createRepository(repo);
      return { ...at, detail: `missing for ${ms} ms, then re-created empty` };
    }
    case 'copy-rollback': {
      const refs = [...(await branches(gitDir))];
      for (const [ref, tip] of rng.shuffle(refs)) {
        const parent = (await git(gitDir, ['rev-parse', '--verify', '--quiet', `${tip}^`]).catch(() => '')).trim();
        if (!parent) continue;
        const moved = await git(gitDir, ['update-ref', '-m', 'chaos: roll back', ref, parent, tip]).then(() => true, () => false);
        return { ...at, detail: moved ? `${ref} ${tip.slice(0, 10)} → parent ${parent.slice(0, 10)}` : `${ref} moved meanwhile: not rolled back` };
      }
      return { ...at, detail: 'no branch with a parent: nothing rolled back' };
    }
    case 'copy-divergent': {
      // Only on branches clients never force-push or delete (w<N>, shared-<K>): a client's
      // legitimate force-push cannot then be what drops the commit after githa adopted it.
      const refs = [...(await branches(gitDir))].filter(([ref]) => !ref.startsWith('refs/heads/vol-'));
      if (refs.length === 0) return { ...at, detail: 'no branch: no commit added' };
      const [ref, tip] = rng.pick(refs);
      await git(gitDir, ['hash-object', '-t', 'tree', '-w', '/dev/null']);
      const message = `chaos fault: divergent commit on ${b.id} at ${ctx.rec.now()} ms ${rng.int(0, 2 ** 30)}`;
      const oid = (await git(gitDir, ['commit-tree', EMPTY_TREE, '-p', tip, '-m', message])).trim();
      const moved = await git(gitDir, ['update-ref', '-m', 'chaos: divergent commit', ref, oid, tip]).then(() => true, () => false);
      if (!moved) return { ...at, detail: `${ref} moved meanwhile: no commit added` };
      const branch = ref.slice('refs/heads/'.length);
      ctx.rec.addDivergent({ repo, backend: b.id, branch, oid, parent: tip, t: ctx.rec.now() });
      return { ...at, detail: `${ref} ${tip.slice(0, 10)} → ${oid.slice(0, 10)}` };
    }
    default:
      throw new Error(`${kind} is not a copy fault`);
  }
}

/**
 * Which refs reach `oid` on each given backend's copy of `repo` ("b1
 * refs/…"); none where the commit is missing or unreachable. The end of a
 * run asks the assigned backends only: a copy moved away is in its
 * backend's trash, which does not count (docs/chaos.md "Under a factor").
 */
export async function refsReaching(backends: readonly DevBackend[], repo: string, oid: string): Promise<string[]> {
  const out: string[] = [];
  for (const b of backends) {
    const text = await git(b.repoPath(repo), ['for-each-ref', '--contains', oid, '--format=%(refname)']).catch(() => '');
    for (const ref of text.split('\n').filter(Boolean)) out.push(`${b.id} ${ref}`);
  }
  return out;
}
