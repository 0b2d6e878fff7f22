/**
 * The chaos clients (issue 8, "What to build" 1). Each runs the real git
 * against random githa processes over HTTP or SSH until the deadline and
 * records every operation in the history:
 *
 * - writers append commits with unique ids to their own branch (`w<N>`) and
 *   to shared branches (`shared-<K>`, fast-forward pushes based on a fresh
 *   fetch, retried on rejection), force-push their volatile branch
 *   (`vol-<N>`) and delete and recreate it; after an acknowledged push they
 *   often read at once through another githa (read-your-writes);
 * - readers ls-remote, fetch and clone through random githa processes.
 *
 * Commits are made with `git commit-tree` on the empty tree: no work tree,
 * and each message is unique, so each commit id is.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { branchesFrom, type Git, type GitRun } from './git.js';
import type { GithaProc } from './githa-proc.js';
import type { HistoryRecorder, PushMode, PushResult, ReadOp } from './history.js';
import type { Rng } from './rng.js';

export type Transport = 'http' | 'ssh';

export interface WorkloadContext {
  readonly rec: HistoryRecorder;
  readonly githas: readonly GithaProc[];
  readonly repos: readonly string[];
  readonly sharedBranches: number;
  /** Transports clients push over (the "ack before commit" test switch only exists on HTTP). */
  readonly pushTransports: readonly Transport[];
  readonly readTransports: readonly Transport[];
  /** Probability of an immediate read after an acknowledged push. */
  readonly readAfterPush: number;
  /**
   * Test only (the broken-githa check): after an acknowledged push, pause the
   * githa that acknowledged it while reading through another one. A correct
   * githa committed before acknowledging, so this changes nothing for it.
   */
  readonly pauseAckingGitha?: boolean;
  /** One such pause at a time (two githa paused, each waiting on a read through the other, would stall). */
  readonly pauseTurn?: { last: Promise<void> };
  /** Per git command. */
  readonly gitTimeoutMs: number;
  /** Clients start no new operation after this (recorder clock, ms). */
  readonly deadline: number;
}

const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

function via(ctx: WorkloadContext, rng: Rng, transports: readonly Transport[], exclude?: GithaProc): { githa: GithaProc; transport: Transport } {
  const githas = ctx.githas.filter((g) => g !== exclude);
  return { githa: rng.pick(githas.length > 0 ? githas : ctx.githas), transport: rng.pick(transports) };
}

/** One chaos client: its own bare repository of local objects, per repository. */
export class Client {
  private readonly local = new Map<string, string>();
  /** What this client believes each branch is (from its last read or its own acknowledged push); undefined = must read. */
  private readonly tips = new Map<string, Map<string, string>>();
  private seq = 0;

  constructor(
    readonly name: string,
    private readonly ctx: WorkloadContext,
    private readonly git: Git,
    private readonly rng: Rng,
    private readonly home: string,
  ) {}

  private async repoDir(repo: string): Promise<string> {
    let dir = this.local.get(repo);
    if (!dir) {
      dir = mkdtempSync(join(this.home, 'local-'));
      await this.git.must(['init', '--quiet', '--bare', dir]);
      // The empty tree is built into git, but write it so pack-objects finds a real object.
      await this.git.must(['hash-object', '-t', 'tree', '-w', '/dev/null'], { cwd: dir });
      this.local.set(repo, dir);
    }
    return dir;
  }

  private stopped(): boolean {
    return this.ctx.rec.now() >= this.ctx.deadline;
  }

  async runWriter(index: number): Promise<void> {
    while (!this.stopped()) {
      const repo = this.rng.pick(this.ctx.repos);
      const r = this.rng.next();
      if (r < 0.4) await this.append(repo, `w${index}`, false);
      else if (r < 0.75) await this.append(repo, `shared-${this.rng.int(0, this.ctx.sharedBranches - 1)}`, true);
      else if (r < 0.88) await this.forcePush(repo, `vol-${index}`);
      else await this.deleteOrRecreate(repo, `vol-${index}`);
    }
  }

  async runReader(): Promise<void> {
    while (!this.stopped()) {
      const repo = this.rng.pick(this.ctx.repos);
      const r = this.rng.next();
      const how = r < 0.6 ? 'ls-remote' : r < 0.9 ? 'fetch' : 'clone';
      const op = await this.read(repo, how);
      if (op.result !== 'ok') await sleep(100);
    }
  }

  /** A read through a random githa, recorded; updates what this client believes. */
  async read(repo: string, how: ReadOp['how'], exclude?: GithaProc): Promise<ReadOp> {
    const { githa, transport } = via(this.ctx, this.rng, this.ctx.readTransports, exclude);
    const url = githa.url(transport, repo);
    const start = this.ctx.rec.now();
    let run: GitRun;
    let refs: Record<string, string> = {};
    let cleanup: string | undefined;
    const t = { timeoutMs: this.ctx.gitTimeoutMs };
    if (how === 'ls-remote') {
      run = await this.git.run(['ls-remote', '--heads', '--', url], t);
      if (run.code === 0) refs = branchesFrom(run.stdout);
    } else if (how === 'fetch') {
      const dir = await this.repoDir(repo);
      run = await this.git.run(['fetch', '--quiet', '--prune', '--no-tags', '--', url, '+refs/heads/*:refs/remotes/r/*'], { ...t, cwd: dir });
      if (run.code === 0) {
        const list = await this.git.run(['for-each-ref', '--format=%(objectname) %(refname)', 'refs/remotes/r/'], { cwd: dir });
        refs = branchesFrom(list.stdout, 'refs/remotes/r/');
      }
    } else {
      cleanup = mkdtempSync(join(this.home, 'clone-'));
      const dir = join(cleanup, 'r.git');
      run = await this.git.run(['clone', '--quiet', '--bare', '--', url, dir], t);
      if (run.code === 0) refs = branchesFrom((await this.git.run(['for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads/'], { cwd: dir })).stdout);
    }
    const end = this.ctx.rec.now();
    if (cleanup) rmSync(cleanup, { recursive: true, force: true });
    const op: ReadOp = {
      kind: 'read',
      id: this.ctx.rec.id(),
      client: this.name,
      repo,
      how,
      start,
      end,
      result: run.code === 0 ? 'ok' : 'error',
      refs: run.code === 0 ? refs : {},
      via: `${githa.name}/${transport}`,
      ...(run.code === 0 ? {} : { detail: lastLine(run.stderr) || (run.timedOut ? 'timed out' : `exit ${run.code}`) }),
    };
    this.ctx.rec.add(op);
    // Only a fetch brings the objects: build on what it saw, never on an ls-remote's ids.
    if (op.result === 'ok' && how === 'fetch') this.tips.set(repo, new Map(Object.entries(refs)));
    return op;
  }

  /** This client's belief about `branch`, reading (a fetch, so the objects are local) when it has none. */
  private async tip(repo: string, branch: string, fresh: boolean): Promise<{ ok: boolean; oid?: string }> {
    const known = this.tips.get(repo);
    if (!fresh && known?.has(branch)) return { ok: true, oid: known.get(branch) };
    const op = await this.read(repo, 'fetch');
    if (op.result !== 'ok') return { ok: false };
    return { ok: true, oid: op.refs[branch] };
  }

  private async makeCommit(repo: string, parent: string | undefined): Promise<string> {
    const dir = await this.repoDir(repo);
    const message = `${this.name} ${++this.seq} ${randomBytes(6).toString('hex')}`;
    const args = ['commit-tree', EMPTY_TREE, ...(parent ? ['-p', parent] : []), '-m', message];
    const oid = (await this.git.must(args, { cwd: dir })).trim();
    this.ctx.rec.commit(oid, parent ?? null);
    return oid;
  }

  private async append(repo: string, branch: string, shared: boolean): Promise<void> {
    for (let attempt = 0; attempt < 3 && !this.stopped(); attempt++) {
      const base = await this.tip(repo, branch, shared || attempt > 0);
      if (!base.ok) {
        await sleep(100);
        return;
      }
      const oid = await this.makeCommit(repo, base.oid);
      const result = await this.push(repo, branch, 'ff', oid);
      if (result !== 'rejected') return;
    }
  }

  private async forcePush(repo: string, branch: string): Promise<void> {
    const known = [...(this.tips.get(repo)?.values() ?? [])];
    // A new root, or a commit on top of some tip this client has (its objects are local).
    const parent = known.length > 0 && this.rng.chance(0.5) ? this.rng.pick(known) : undefined;
    await this.push(repo, branch, 'force', await this.makeCommit(repo, parent));
  }

  private async deleteOrRecreate(repo: string, branch: string): Promise<void> {
    const base = await this.tip(repo, branch, false);
    if (!base.ok) return;
    if (base.oid !== undefined) await this.push(repo, branch, 'delete', null);
    else await this.push(repo, branch, 'force', await this.makeCommit(repo, undefined));
  }

  /** One recorded push; on ok, maybe an immediate read through a random githa. */
  private async push(repo: string, branch: string, mode: PushMode, oid: string | null): Promise<PushResult> {
    const { githa, transport } = via(this.ctx, this.rng, this.ctx.pushTransports);
    const dir = await this.repoDir(repo);
    const ref = `refs/heads/${branch}`;
    const spec = oid === null ? `:${ref}` : `${oid}:${ref}`;
    const args = ['push', '--porcelain', ...(mode === 'force' ? ['--force'] : []), '--', githa.url(transport, repo), spec];
    const inFlight = this.ctx.rec.inFlightPushes;
    inFlight.set(githa.index, (inFlight.get(githa.index) ?? 0) + 1);
    const start = this.ctx.rec.now();
    const run = await this.git.run(args, { cwd: dir, timeoutMs: this.ctx.gitTimeoutMs });
    const end = this.ctx.rec.now();
    inFlight.set(githa.index, (inFlight.get(githa.index) ?? 1) - 1);
    const { result, detail } = classifyPush(run, ref);
    this.ctx.rec.add({ kind: 'push', id: this.ctx.rec.id(), client: this.name, repo, branch, mode, newOid: oid, start, end, result, via: `${githa.name}/${transport}`, ...(detail ? { detail } : {}) });
    const tips = this.tips.get(repo) ?? new Map<string, string>();
    this.tips.set(repo, tips);
    if (result === 'ok') {
      if (oid === null) tips.delete(branch);
      else tips.set(branch, oid);
      if (this.ctx.pauseAckingGitha && this.ctx.pauseTurn) {
        const turn = this.ctx.pauseTurn;
        const previous = turn.last;
        let done!: () => void;
        turn.last = new Promise<void>((resolve) => (done = resolve));
        await previous;
        githa.pause();
        try {
          await this.read(repo, 'ls-remote', githa);
        } finally {
          githa.resume();
          done();
        }
      } else if (this.rng.chance(this.ctx.readAfterPush)) await this.read(repo, 'ls-remote');
    } else {
      // Not sure what the branch is now: read before building on it.
      this.tips.delete(repo);
      if (result !== 'rejected') await sleep(50);
    }
    return result;
  }
}

/**
 * git push --porcelain: one line per ref, "<flag>\t<from>:<to>\t<summary>".
 * Flags ' ', '*', '+', '-', '=' mean git got "ok" for the ref (acknowledged).
 * "!" with "[rejected]" is git's own refusal before sending anything (the
 * advertised ref is not an ancestor); any other "!" is an answer from githa
 * or the backend (it may have applied); no line at all is an unknown outcome.
 */
export function classifyPush(run: GitRun, ref: string): { result: PushResult; detail?: string } {
  if (run.timedOut) return { result: 'unknown', detail: 'timed out' };
  const line = run.stdout.split('\n').find((l) => /^[ *+\-=!]\t/.test(l) && l.split('\t')[1]?.endsWith(`:${ref}`));
  if (!line) return { result: 'unknown', detail: lastLine(run.stderr) || `exit ${run.code}` };
  const flag = line[0];
  const summary = line.split('\t')[2] ?? '';
  if (flag !== '!') return { result: 'ok' };
  if (summary.startsWith('[rejected]')) return { result: 'rejected', detail: summary };
  if (summary.startsWith('[remote failure]')) return { result: 'unknown', detail: summary };
  return { result: 'error', detail: `${summary} ${lastLine(run.stderr)}`.trim() };
}

/** The most telling line of git's stderr: githa's own message, else git's fatal or error line, else the last. */
function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '');
  const line = lines.find((l) => l.includes('githa:')) ?? lines.find((l) => /^(fatal|error):/.test(l)) ?? lines.at(-1) ?? '';
  return line.slice(0, 300);
}
