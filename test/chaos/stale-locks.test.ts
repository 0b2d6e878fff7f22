/**
 * The chaos harness's operator step after killing a backend
 * (tools/chaos/stale-locks.ts): ref locks go once nothing works in the
 * repositories, and stay while a process still does.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeStaleRefLocks } from '../../tools/chaos/stale-locks.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function repos() {
  const root = mkdtempSync(join(tmpdir(), 'githa-stale-locks-'));
  dirs.push(root);
  const repo = join(root, 'team', 'app.git');
  const files = {
    branchLock: join(repo, 'refs', 'heads', 'main.lock'),
    nestedLock: join(repo, 'refs', 'heads', 'feature', 'x.lock'),
    packedLock: join(repo, 'packed-refs.lock'),
    objectLock: join(repo, 'objects', 'info', 'commit-graph.lock'),
    configLock: join(repo, 'config.lock'),
    ref: join(repo, 'refs', 'heads', 'main'),
  };
  for (const f of Object.values(files)) {
    mkdirSync(join(f, '..'), { recursive: true });
    writeFileSync(f, 'x');
  }
  return { root, files };
}

describe('removeStaleRefLocks', () => {
  it('removes the locks of refs and packed-refs, nothing else, once no process works there', async () => {
    const { root, files } = repos();
    expect(await removeStaleRefLocks(root, 1_000)).toBe(3);
    expect(existsSync(files.branchLock)).toBe(false);
    expect(existsSync(files.nestedLock)).toBe(false);
    expect(existsSync(files.packedLock)).toBe(false);
    expect(existsSync(files.objectLock)).toBe(true);
    expect(existsSync(files.configLock)).toBe(true);
    expect(existsSync(files.ref)).toBe(true);
  });

  it('leaves them while a process still works in a repository (its lock may be live)', async () => {
    const { root, files } = repos();
    const child = spawn('sleep', ['5'], { cwd: join(root, 'team', 'app.git') });
    try {
      const t0 = performance.now();
      expect(await removeStaleRefLocks(root, 300)).toBe(0);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
      expect(existsSync(files.branchLock)).toBe(true);
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    expect(await removeStaleRefLocks(root, 1_000)).toBe(3);
  });
});
