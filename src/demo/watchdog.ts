/**
 * Makes sure dev-cluster servers never outlive the process that started them.
 *
 * - `PidRegistry` keeps the pids (= process group ids) of the running servers
 *   in a file, rewritten on every start and exit.
 * - A watchdog (`/bin/sh` loop, detached, in its own process group) polls the
 *   parent pid with `kill -0` every second. When the parent is gone (even if it
 *   was SIGKILLed) or the maximum lifetime has passed, it SIGKILLs every
 *   process group listed in the pid file and removes the cluster directory.
 *   The script is a constant: the shell only receives numbers and two paths
 *   we created, as positional parameters, never as code.
 * - A `process.on('exit')` hook SIGKILLs the servers of clusters that were not
 *   stopped, for the cases where node exits normally.
 */
import { spawn } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import type { PidTracker } from './process.js';
import { signalGroup } from './process.js';

const WATCHDOG_SCRIPT = `
parent=$1; limit=$2; pidfile=$3; dir=$4
n=0
while kill -0 "$parent" 2>/dev/null; do
  if [ "$limit" -gt 0 ] && [ "$n" -ge "$limit" ]; then break; fi
  sleep 1
  n=$((n + 1))
done
if [ -f "$pidfile" ]; then
  while read -r p; do
    case "$p" in
      ''|*[!0-9]*) ;;
      *) kill -9 "-$p" 2>/dev/null; kill -9 "$p" 2>/dev/null ;;
    esac
  done < "$pidfile"
fi
if [ -n "$dir" ]; then sleep 1; rm -rf -- "$dir"; fi
`;

const liveRegistries = new Set<PidRegistry>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const registry of liveRegistries) registry.killAll();
  });
}

/** The pids of one cluster's servers, mirrored to `pidFile` for the watchdog. */
export class PidRegistry implements PidTracker {
  private readonly pids = new Set<number>();
  private closed = false;

  constructor(private readonly pidFile: string) {
    liveRegistries.add(this);
    installExitHook();
    this.write();
  }

  add(pid: number): void {
    this.pids.add(pid);
    this.write();
  }

  remove(pid: number): void {
    this.pids.delete(pid);
    this.write();
  }

  /** SIGKILLs every registered process group (synchronous, for exit hooks). */
  killAll(): void {
    for (const pid of this.pids) signalGroup(pid, 'SIGKILL');
  }

  /** Forget this registry (after an orderly stop). */
  close(): void {
    this.closed = true;
    liveRegistries.delete(this);
  }

  private write(): void {
    if (this.closed) return;
    try {
      const tmp = `${this.pidFile}.tmp`;
      writeFileSync(tmp, [...this.pids].map((pid) => `${pid}\n`).join(''));
      renameSync(tmp, this.pidFile);
    } catch {
      // The directory may be gone already (removed by the watchdog).
    }
  }
}

export interface WatchdogOptions {
  /** The process whose death triggers the cleanup; default: this process. */
  parentPid?: number;
  /** Kill everything after this long even if the parent lives; 0 = never. */
  maxLifetimeMs: number;
  pidFile: string;
  /** Removed after the kill; omit to keep it. */
  removeDir?: string;
}

/** Starts the watchdog; returns a function that stops it (after an orderly shutdown). */
export function startWatchdog(options: WatchdogOptions): () => void {
  const parent = options.parentPid ?? process.pid;
  if (!Number.isSafeInteger(parent) || parent <= 0) throw new Error(`bad parent pid ${parent}`);
  const limitSeconds = Math.max(0, Math.ceil(options.maxLifetimeMs / 1000));
  const child = spawn(
    '/bin/sh',
    ['-c', WATCHDOG_SCRIPT, 'githa-devcluster-watchdog', String(parent), String(limitSeconds), options.pidFile, options.removeDir ?? ''],
    { detached: true, stdio: 'ignore' },
  );
  child.on('error', () => {
    // /bin/sh missing: the exit hook is all we have.
  });
  child.unref();
  const pid = child.pid;
  return () => {
    if (pid !== undefined) signalGroup(pid, 'SIGKILL');
  };
}
