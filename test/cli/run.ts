/**
 * Runs the operator CLI as a real process (`node dist/cli/main.js …`), as an
 * operator would; dist/ is built by test/global-setup.ts.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const MAIN = resolve(import.meta.dirname, '../../dist/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `githa <args…> --config <configPath>`; never throws on a non-zero exit status. */
export function githaCli(configPath: string, args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((res) => {
    const env: NodeJS.ProcessEnv = { ...process.env, GITHA_CONFIG: '' };
    delete env.GITHA_REDIS_URL;
    execFile(process.execPath, [MAIN, ...args, '--config', configPath], { env, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      res({ code, stdout, stderr });
    });
  });
}

/** A backend row of `status --json` and `backend list --json` (src/cli/commands/status.ts, backend.ts). */
export interface BackendRowJson {
  id: string;
  enabled: boolean;
  writable: boolean;
  health: string;
  [field: string]: unknown;
}
/** A backend row of `repo --json` (src/cli/commands/repo.ts). */
export interface RepoBackendJson {
  backend: string;
  version: number;
  leader: boolean;
  stale: boolean;
  [field: string]: unknown;
}
/** `status --json`: the cluster status plus why it needs attention. */
export interface StatusJson {
  repositories: unknown[];
  backends: BackendRowJson[];
  backlog: number;
  attention: string[];
  [field: string]: unknown;
}
/** `backend list --json`. */
export interface BackendListJson {
  writeQuorum: number;
  backends: BackendRowJson[];
}
/** `repo R --json`. */
export interface RepoJson {
  repo: string;
  state: string;
  version: number;
  backends: RepoBackendJson[];
  [field: string]: unknown;
}
/** `dataloss --json`. */
export interface DatalossJson {
  writeQuorum: number;
  repositories: unknown[];
}
/** One entry of `log R --json`: its stream id, time, and the entry's fields as stored. */
export type LogEntryJson = { id: string; at: string } & Record<string, string>;

export type CliJsonResult<T> = { code: number | null; data: T; stderr: string };

/** The same, parsing `--json` output; the commands the tests read have their document typed. */
export function githaJson(configPath: string, args: ['status']): Promise<CliJsonResult<StatusJson>>;
export function githaJson(configPath: string, args: ['backend', 'list']): Promise<CliJsonResult<BackendListJson>>;
export function githaJson(configPath: string, args: ['repo', string]): Promise<CliJsonResult<RepoJson>>;
export function githaJson(configPath: string, args: ['dataloss']): Promise<CliJsonResult<DatalossJson>>;
export function githaJson(configPath: string, args: ['log', ...string[]]): Promise<CliJsonResult<LogEntryJson[]>>;
export function githaJson<T = unknown>(configPath: string, args: string[]): Promise<CliJsonResult<T>>;
export async function githaJson<T>(configPath: string, args: string[]): Promise<CliJsonResult<T>> {
  const r = await githaCli(configPath, [...args, '--json']);
  let data: T;
  try {
    data = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`githa ${args.join(' ')} --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, data, stderr: r.stderr };
}
