/**
 * `githa lock R… --backend B`: a maintenance lock (docs/operations.md "Frozen: maintenance").
 * Takes the write lock of every named repository (kept extended while held)
 * and freezes each for `maintenance`, naming the operator and B, so pushes are
 * refused at once with a clear message; reads go on. The operator edits B by
 * hand, then releases: for each repository B's refs are read, B becomes the
 * leader at max + 1 with that checksum (the operator vouched for it), the
 * freeze is lifted, and the other copies catch up by replication. If B cannot
 * be read at release, the record stays as it was and only the freeze is lifted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { refsChecksum } from '../../cluster/checksum.js';
import { BackendUnavailableError } from '../../errors.js';
import type { HeldLock } from '../../state/lock.js';
import { createInterface } from 'node:readline/promises';
import { EXIT, json, type Streams } from '../output.js';
import { backendArg, operatorName, operatorStore, repositoryArg } from './changes.js';
import { common, Exit, run, type Context } from './context.js';

interface LockOptions {
  config?: string;
  json?: boolean;
  as?: string;
  backend?: string;
  releaseAfter?: string;
}

export function register(program: Command): void {
  common(program.command('lock'))
    .description('maintenance: hold the write lock of repositories while B is edited by hand; on release B becomes their leader')
    .argument('<repositories...>', 'the repositories to lock')
    .requiredOption('--backend <backend>', 'the backend being maintained: it leads once the locks are released')
    .option('--as <name>', 'operator name recorded in the push log (default: $USER)')
    .option('--release-after <seconds>', 'release by itself after this many seconds (for scripts; otherwise it asks on the terminal)')
    .action((repos: string[], opts: LockOptions) => run(opts, (ctx) => lock(ctx, repos, opts)));
}

interface Released {
  repo: string;
  status: 'released' | 'unreachable' | 'stopped' | 'lock-lost';
  version?: number;
  checksum?: string;
  reason?: string;
}

async function lock(ctx: Context, repoArgs: string[], opts: LockOptions): Promise<number> {
  const repos = [...new Set(repoArgs.map(repositoryArg))];
  const backend = backendArg(ctx, opts.backend ?? '', '--backend');
  let releaseAfterMs: number | undefined;
  if (opts.releaseAfter !== undefined) {
    const s = Number(opts.releaseAfter);
    if (!Number.isFinite(s) || s < 0) throw new Exit(EXIT.FAILED, `--release-after ${opts.releaseAfter}: a number of seconds`);
    releaseAfterMs = s * 1000;
  }
  if (releaseAfterMs === undefined && ctx.streams.in.isTTY !== true) {
    throw new Exit(EXIT.ATTENTION, 'githa lock asks on a terminal when to release the locks; without a terminal use --release-after <seconds>; nothing was locked');
  }
  const user = operatorName(opts.as);
  const { state: st } = ctx.parts;
  const ops = operatorStore(ctx);
  const detail = `githa lock by ${user} while ${backend} is maintained`;
  const say = (text: string): void => {
    (opts.json ? ctx.streams.err : ctx.streams.out).write(text);
  };

  const results = await holdAll(ctx, repos, async (held) => {
    // Every repository must be lockable before any is frozen.
    for (const repo of repos) {
      const state = await st.repos.read(repo);
      if (state.frozen?.reason === 'maintenance') {
        // Its write lock was free: the githa lock that froze it is gone (killed); this one takes over.
        say(`${repo}: taking over a maintenance freeze left behind (${state.frozen.detail})\n`);
      } else if (state.frozen) throw new Exit(EXIT.ATTENTION, `${repo} is frozen (${state.frozen.reason}); resolve that first; nothing was locked`);
      if (state.writing) {
        throw new Exit(EXIT.ATTENTION, `${repo} has an interrupted write on ${state.writing.backend}; resolve it first (githa thaw ${repo} --demote ${state.writing.backend}); nothing was locked`);
      }
    }
    const begun: string[] = [];
    for (const [i, repo] of repos.entries()) {
      const r = await ops.beginMaintenance(repo, held[i]!.token, backend, detail, { user });
      if (r.status !== 'OK') {
        for (const [j, done] of begun.entries()) await ops.releaseMaintenance(done, held[j]!.token, backend, undefined, { user, note: 'aborted: another repository could not be locked' });
        throw new Exit(EXIT.ATTENTION, `${repo} could not be frozen for maintenance (${r.status.toLowerCase()}${r.why ? `: ${r.why}` : ''}); nothing is locked`);
      }
      begun.push(repo);
    }
    say(`locked for maintenance of ${backend} (pushes are refused, reads go on):\n${repos.map((r) => `  ${r}\n`).join('')}`);
    say(`edit ${backend}'s copies now; on release ${backend} becomes their leader and the other copies catch up.\n`);
    const ready = async (): Promise<undefined> => {
      if (releaseAfterMs !== undefined) {
        say(`releasing in ${releaseAfterMs / 1000} s\n`);
        await sleep(releaseAfterMs);
        return undefined;
      }
      while (!(await askRelease(ctx.streams))) {
        if (held.some((h) => h.signal.aborted)) break;
      }
      return undefined;
    };
    // Killed (SIGTERM, a closed terminal's SIGHUP): the locks go, the freeze is lifted, but B is not vouched for.
    const signalled = await Promise.race([ready(), stopSignal()]);
    const out: Released[] = [];
    for (const [i, repo] of repos.entries()) out.push(await release(ctx, repo, backend, held[i]!, user, signalled));
    return out;
  });

  // noteWrite only updates the repository index and wakes the replicators; the release
  // has recorded the version, and the replicators' periodic scan covers a lost event
  // (docs/architecture.md, "Index and events outside the commit script").
  for (const r of results) if (r.version) await st.index.noteWrite(r.repo, backend, r.version).catch(() => {});
  if (opts.json) ctx.streams.out.write(json({ backend, repositories: results }));
  else {
    for (const r of results) {
      if (r.status === 'released') {
        ctx.streams.out.write(`${r.repo}: released; ${backend} leads at version ${r.version} (checksum ${r.checksum!.slice(0, 12)}); the other copies catch up by replication\n`);
      } else ctx.streams.out.write(`${r.repo}: released, but ${r.reason}\n`);
    }
  }
  return results.every((r) => r.status === 'released') ? EXIT.OK : EXIT.ATTENTION;
}

/** Takes the write lock of each repository in turn and runs `fn` while all are held (each kept extended). */
function holdAll<T>(ctx: Context, repos: readonly string[], fn: (held: HeldLock[]) => Promise<T>, held: HeldLock[] = []): Promise<T> {
  if (held.length === repos.length) return fn(held);
  return ctx.parts.cluster.ctx.writeLocks.withLock(repos[held.length]!, (l) => holdAll(ctx, repos, fn, [...held, l]));
}

/** Resolves with the name of the first SIGTERM, SIGHUP or SIGINT. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.once(sig, () => resolve(sig));
  });
}

/**
 * "Ready to release the locks? [y/N]". Ctrl-C at the prompt does not leave
 * the locks behind silently: it says they are still held and asks again.
 */
async function askRelease(streams: Streams): Promise<boolean> {
  const rl = createInterface({ input: streams.in, output: streams.err, terminal: streams.in.isTTY === true });
  try {
    return await new Promise<boolean>((resolve) => {
      rl.on('SIGINT', () => {
        streams.err.write('\nthe locks are still held: answer y to release them\n');
        resolve(false);
      });
      rl.question('Ready to release the locks? [y/N] ').then(
        (answer) => resolve(/^y(es)?$/i.test(answer.trim())),
        () => resolve(false),
      );
    });
  } finally {
    rl.close();
  }
}

async function release(ctx: Context, repo: string, backend: string, held: HeldLock, user: string, signalled?: string): Promise<Released> {
  const ops = operatorStore(ctx);
  if (held.signal.aborted) {
    return { repo, status: 'lock-lost', reason: `the write lock on ${repo} was lost while held (Redis unreachable?); check githa status ${repo}` };
  }
  if (signalled) {
    await ops.releaseMaintenance(repo, held.token, backend, undefined, { user, note: `stopped by ${signalled}: record unchanged` });
    return { repo, status: 'stopped', reason: `githa lock was stopped (${signalled}): the freeze is lifted, the record is unchanged (${backend} did not become the leader)` };
  }
  let checksum: string | undefined;
  let why = '';
  try {
    const refs = await ctx.parts.cluster.client(backend).listRefs(repo);
    if (refs) checksum = refsChecksum(refs);
    else why = `${repo} does not exist on ${backend}`;
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    why = `${backend} is unreachable (${err.message})`;
  }
  const r = await ops.releaseMaintenance(repo, held.token, backend, checksum, {
    user,
    note: checksum ? `${backend} vouched for by the operator` : `${why}: record unchanged`,
  });
  if (r.status !== 'OK') return { repo, status: 'lock-lost', reason: `the write lock on ${repo} was lost before the release could be recorded; check githa status ${repo}` };
  if (!checksum) return { repo, status: 'unreachable', reason: `${why}: the record is unchanged (${backend} did not become the leader) and the freeze is lifted` };
  return { repo, status: 'released', version: r.version, checksum };
}
