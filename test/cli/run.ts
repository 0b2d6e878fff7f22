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

/** The same, parsing `--json` output. */
export async function githaJson<T = any>(configPath: string, args: string[]): Promise<{ code: number | null; data: T; stderr: string }> {
  const r = await githaCli(configPath, [...args, '--json']);
  let data: T;
  try {
    data = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`githa ${args.join(' ')} --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, data, stderr: r.stderr };
}
