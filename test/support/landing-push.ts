/**
 * A push landing on a backend as the cluster sees it, made by hand so a test
 * can time it: its write marker and lock in Redis and the branch moved on the
 * backend's disk (`landing`), then recorded (`recorded`: the backend's version
 * and checksum move on, the marker and lock go). Used by the tests of reads
 * that meet pushes landing one after another (docs/architecture.md "Verified
 * copies" 1).
 */
import type { Redis } from 'ioredis';
import { checksumOf, diskRefs, gitDir } from './backend-refs.js';
import type { DevBackend } from '../../src/demo/cluster.js';
import { repoKey } from './state.js';

export function landingPushes(redis: Redis, backend: DevBackend, repo: string): { landing: () => Promise<string>; recorded: () => Promise<void> } {
  const key = (what: string): string => repoKey(`${repo}.git`, what);
  const lock = `githa:lock:{${repo}.git}`;
  let n = 0;
  return {
    landing: async () => {
      n += 1;
      const tree = (await gitDir(backend, repo, ['rev-parse', 'refs/heads/main^{tree}'])).trim();
      const commit = (await gitDir(backend, repo, ['-c', 'user.name=Pusher', '-c', 'user.email=p@githa.invalid', 'commit-tree', tree, '-p', 'refs/heads/main', '-m', `push ${n}`])).trim();
      const pre = checksumOf(await diskRefs(backend, repo));
      const now = String(Date.now());
      await redis.hset(key('writing'), { id: `test-${n}`, backend: backend.id, proxy: 'test', user: 'pusher', transport: 'http', started: now, heartbeat: now, preChecksum: pre });
      await redis.set(lock, `test-${n}`, 'PX', 60_000);
      await gitDir(backend, repo, ['update-ref', 'refs/heads/main', commit]);
      return commit;
    },
    recorded: async () => {
      await redis.hincrby(key('versions'), backend.id, 1);
      await redis.hset(key('checksums'), backend.id, checksumOf(await diskRefs(backend, repo)));
      await redis.del(key('writing'), lock);
    },
  };
}
