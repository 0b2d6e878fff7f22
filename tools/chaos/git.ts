/**
 * The real `git` client for the chaos clients: execFile (never a shell), a
 * clean environment (private HOME, no system config, no prompts), SSH with
 * the cluster's client key and strict host key checking, and a hard timeout.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isolatedGitEnv } from '../support/git-env.js';

export interface GitRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Killed by the timeout. */
  timedOut: boolean;
}

/** Quotes a word for the shell git runs GIT_SSH_COMMAND with (paths we created, never client input). */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export class Git {
  private readonly env: Record<string, string>;

  constructor(home: string, ssh: { keyPath: string; knownHostsPath: string }) {
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, '.gitconfig'), '[user]\n\tname = chaos\n\temail = chaos@githa.invalid\n[gc]\n\tauto = 0\n[init]\n\tdefaultBranch = main\n');
    this.env = {
      ...isolatedGitEnv(home, { name: 'chaos', email: 'chaos@githa.invalid' }),
      GIT_SSH_VARIANT: 'ssh',
      GIT_SSH_COMMAND: [
        'ssh', '-F', '/dev/null', '-i', shellQuote(ssh.keyPath),
        '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes',
        '-o', `UserKnownHostsFile=${shellQuote(ssh.knownHostsPath)}`, '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', 'UpdateHostKeys=no', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR',
      ].join(' '),
    };
  }

  run(args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<GitRun> {
    return new Promise((resolve) => {
      execFile(
        'git',
        args,
        { cwd: options.cwd, env: this.env, timeout: options.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
        (error, stdout, stderr) => {
          const e = error as (Error & { code?: unknown; killed?: boolean; signal?: string | null }) | null;
          const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
          resolve({ code, stdout, stderr, timedOut: Boolean(e?.killed && e.signal === 'SIGKILL') });
        },
      );
    });
  }

  /** Runs and throws unless git exits with 0 (for local commands that must work). */
  async must(args: string[], options: { cwd?: string } = {}): Promise<string> {
    const r = await this.run(args, options);
    if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }
}

/** `<oid>\t<ref>` or `<oid> <ref>` lines → branch → oid (refs/heads/* only, or under `prefix`). */
export function branchesFrom(text: string, prefix = 'refs/heads/'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{40,64})[\t ](\S+)$/.exec(line.trim());
    if (m && m[2]!.startsWith(prefix)) out[m[2]!.slice(prefix.length)] = m[1]!;
  }
  return out;
}
