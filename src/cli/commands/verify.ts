/**
 * `githa verify [R]`: compares each recorded copy's live checksum with the
 * recorded one now (src/cluster/verifier.ts), for one repository or every
 * known one; a drifted copy is recorded in Redis (it stops leading) and the
 * command exits 1. It also compares HEAD across the copies, which the Git
 * protocol cannot set (docs/architecture.md "Catch-up relay"): its symbolic target where the
 * backend's transport tells it (ls-refs `symrefs`), else its object id. A
 * HEAD mismatch is a warning, not drift.
 */
import type { Command } from 'commander';
import { boundedEach } from '../../cluster/bounded.js';
import { Verifier } from '../../cluster/verifier.js';
import { BackendUnavailableError } from '../../errors.js';
import { EXIT, json, progress, table } from '../output.js';
import { repositoryArg } from './changes.js';
import { common, run, type Context } from './context.js';

interface VerifyOptions {
  config?: string;
  json?: boolean;
}

interface RepoResult {
  repo: string;
  ok: string[];
  drifted: string[];
  skipped: string[];
  /** backend → HEAD (its symbolic target, or `detached <oid>` / an object id when only that is known). */
  head: Record<string, string>;
  headMismatch: boolean;
}

export function register(program: Command): void {
  common(program.command('verify'))
    .description('compare every copy\'s refs with the recorded checksum now (drift: exit 1) and HEAD across copies (a warning)')
    .argument('[repository]', 'one repository (default: every repository githa knows)')
    .action((repo: string | undefined, opts: VerifyOptions) => run(opts, (ctx) => verify(ctx, repo, opts)));
}

async function verify(ctx: Context, repoArg: string | undefined, opts: VerifyOptions): Promise<number> {
  const names: string[] = [];
  if (repoArg !== undefined) names.push(repositoryArg(repoArg));
  else for await (const page of ctx.parts.state.index.repositories()) names.push(...page);
  names.sort();
  // An operator's command: unpaced, verify.concurrency repositories at a time (src/cluster/verifier.ts boundedEach).
  const verifier = new Verifier(ctx.parts.cluster.ctx, { unpaced: true });
  const bar = names.length > 1 ? progress(ctx.streams, names.length, 'verifying') : undefined;
  const byName = new Map<string, RepoResult>();
  await boundedEach(one(names), ctx.parts.cluster.config.verify.concurrency, async (repo) => {
    const [report, head] = await Promise.all([verifier.verify(repo), heads(ctx, repo)]);
    const distinct = new Set(Object.values(head).filter((h) => h !== ''));
    byName.set(repo, { repo, ok: report.ok, drifted: report.drifted, skipped: report.skipped, head, headMismatch: distinct.size > 1 });
    bar?.tick(repo);
  });
  bar?.done();
  const results = names.map((repo) => byName.get(repo)!);
  const drift = results.reduce((n, r) => n + r.drifted.length, 0);
  if (opts.json) {
    ctx.streams.out.write(json({ repositories: results, drifted: drift, headMismatches: results.filter((r) => r.headMismatch).map((r) => r.repo) }));
    return drift > 0 ? EXIT.ATTENTION : EXIT.OK;
  }
  if (names.length === 0) {
    ctx.streams.out.write('no repositories known: name one (githa verify team/app.git)\n');
    return EXIT.OK;
  }
  const rows: Array<Record<string, string>> = [];
  for (const r of results) {
    const by = new Map<string, string>([...r.ok.map((b) => [b, 'ok'] as const), ...r.drifted.map((b) => [b, 'DRIFTED'] as const), ...r.skipped.map((b) => [b, 'skipped'] as const)]);
    if (by.size === 0) rows.push({ repo: r.repo, backend: '-', result: 'no record', head: '' });
    for (const [backend, result] of [...by].sort(([a], [b]) => a.localeCompare(b))) rows.push({ repo: r.repo, backend, result, head: r.head[backend] ?? '' });
  }
  ctx.streams.out.write(table(rows, ['repo', 'backend', 'result', 'head']));
  for (const r of results.filter((x) => x.drifted.length > 0)) {
    ctx.streams.out.write(`drift: ${r.repo} on ${r.drifted.join(', ')} changed outside githa; overwrite it with the leaders' state: githa sync ${r.repo} --to ${r.drifted[0]}; or keep it (${r.drifted[0]} leads, the others catch up): githa lock ${r.repo} --backend ${r.drifted[0]} --release-after 0\n`);
  }
  for (const r of results.filter((x) => x.headMismatch)) {
    const list = Object.entries(r.head).map(([b, h]) => `${b}=${h || '?'}`).join(' ');
    ctx.streams.out.write(`warning: HEAD differs between the copies of ${r.repo} (${list}); the Git protocol cannot set HEAD: fix it on the backends (git symbolic-ref HEAD refs/heads/<branch>)\n`);
  }
  ctx.streams.out.write(drift > 0 ? `${drift} drifted cop${drift === 1 ? 'y' : 'ies'}\n` : 'no drift\n');
  return drift > 0 ? EXIT.ATTENTION : EXIT.OK;
}

async function* one<T>(items: readonly T[]): AsyncGenerator<readonly T[]> {
  yield items;
}

/**
 * HEAD of each enabled copy: its symbolic target when every client can tell
 * it, else its object id (for all, so they compare like with like). '' when
 * the copy could not be read.
 */
async function heads(ctx: Context, repo: string): Promise<Record<string, string>> {
  const { cluster } = ctx.parts;
  const backends = cluster.activeBackends().map((b) => b.id);
  const symbolic = backends.every((b) => typeof cluster.client(b).headTarget === 'function');
  const out: Record<string, string> = {};
  await Promise.all(
    backends.map(async (b) => {
      const client = cluster.client(b);
      try {
        if (symbolic) {
          const target = await client.headTarget!(repo);
          if (target === null) return;
          if (target !== undefined) {
            out[b] = target;
            return;
          }
        }
        const refs = await client.listRefs(repo);
        if (!refs) return;
        const head = refs.find((r) => r.name === 'HEAD');
        out[b] = head ? (symbolic ? `detached ${head.oid.slice(0, 10)}` : head.oid.slice(0, 10)) : 'unborn';
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        out[b] = '';
      }
    }),
  );
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
