/**
 * Background replication follows githa:events through a consumer group
 * (docs/architecture.md "Background replication", docs/redis.md "githa:events"):
 * an event written while a githa could not read is still delivered to it, so
 * the stale copies of an acknowledged push are caught up at once, not at the
 * next full scan; an event a githa took and never acknowledged (it died) is
 * taken over by another. Real git, Redis, backends and githa processes; the
 * faults are SIGSTOPped and SIGKILLed githas and SIGSTOPped backends.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { checksumOf, diskRefs, refOnDisk } from '../support/backend-refs.js';
import { cliVersions, leadersOf, waitFor } from '../support/state.js';

/** So long that a copy seen within the test can only come from githa:events (or the start-up scan). */
const NO_SCAN = { scanIntervalMs: 600_000 };
/** Lenient probes: a paused githa or backend must not be marked down (a backend's return starts a scan). */
const LENIENT_HEALTH = { timeoutMs: 5_000, failuresToDown: 3 };

describe('background replication from githa:events', () => {
  const cluster = useCluster({ backends: 3 });

  async function allCurrent(repo: string): Promise<string | undefined> {
    const sums = await Promise.all(cluster().backends.map(async (b) => checksumOf(await diskRefs(b, `${repo}.git`))));
    const v = await cliVersions(cluster(), repo);
    return sums.every((s) => s === sums[0]) && leadersOf(v).length === 3 ? sums[0] : undefined;
  }

  /** Clients Redis holds blocked in a command (XREAD / XREADGROUP BLOCK). */
  async function blockedClients(): Promise<string[]> {
    return (await cluster().redis.cli('CLIENT', 'LIST')).split('\n').filter((l) => / flags=\S*b/.test(l));
  }

  it('an event written while the replicating githa was stopped (SIGSTOP) is caught up once it runs again, without a scan', async () => {
    const git = GitClient.forCluster(cluster());
    // The writer: one copy per push, no replicator of its own.
    const writer = await startGitha(cluster(), { singleCopy: true });
    const repo = 'paused-reader';
    await cluster().createRepository(`${repo}.git`);
    const work = await git.init(repo);
    await git.commit(work, { 'README.md': 'first\n' }, 'first');
    await git.push(work, writer.url(`${repo}.git`), ['main']);

    // The replicator: started after that push, so only its start-up scan can see it.
    const reader = await startGitha(cluster(), { config: { replication: { writeQuorum: 1, ...NO_SCAN }, health: LENIENT_HEALTH } });
    await waitFor('the start-up scan caught every copy up', () => allCurrent(repo));

    // Stopped while it waits on githa:events (its only blocking read); Redis answers that read (empty) meanwhile.
    await waitFor('the reader waiting on githa:events', async () => (await blockedClients()).length === 1);
    process.kill(reader.pid, 'SIGSTOP');
    let sha: string;
    try {
      await waitFor('no client blocked on githa:events', async () => (await blockedClients()).length === 0);
      sha = await git.commit(work, { 'a.txt': 'while stopped\n' }, 'while stopped');
      await git.push(work, writer.url(`${repo}.git`), ['main']);
      const v = await cliVersions(cluster(), repo);
      expect(leadersOf(v)).toHaveLength(1);
      const stale = cluster().backends.filter((b) => !leadersOf(v).includes(b.id));
      expect(stale).toHaveLength(2);
      for (const b of stale) expect(await refOnDisk(b, `${repo}.git`, 'refs/heads/main')).not.toBe(sha);
    } finally {
      process.kill(reader.pid, 'SIGCONT');
    }

    // Well before the next scan (10 min away): the event reaches the reader.
    await waitFor('both stale copies caught up from githa:events', () => allCurrent(repo), 15_000);
    for (const b of cluster().backends) expect(await refOnDisk(b, `${repo}.git`, 'refs/heads/main')).toBe(sha);
  });

  it('an event taken by a githa that dies before acknowledging it is taken over by another githa', async () => {
    const git = GitClient.forCluster(cluster());
    const writer = await startGitha(cluster(), { singleCopy: true, config: { health: LENIENT_HEALTH } });
    const repo = 'orphaned-event';
    await cluster().createRepository(`${repo}.git`);
    const work = await git.init(repo);
    await git.commit(work, { 'README.md': 'first\n' }, 'first');
    await git.push(work, writer.url(`${repo}.git`), ['main']);
    // A short pair lease: the dead githa's copy lock must not outlast the take-over by much.
    const replicator = { config: { replication: { writeQuorum: 1, ...NO_SCAN }, health: LENIENT_HEALTH, catchUp: { pairLockMs: 2_000 } } };
    const doomed = await startGitha(cluster(), { ...replicator, proxyId: 'doomed' });
    const heir = await startGitha(cluster(), { ...replicator, proxyId: 'heir' });
    await waitFor('the start-up scans caught every copy up', () => allCurrent(repo));

    // Neither reads: the next event waits in the group.
    await waitFor('both githas waiting on githa:events', async () => (await blockedClients()).length === 2);
    process.kill(doomed.pid, 'SIGSTOP');
    process.kill(heir.pid, 'SIGSTOP');
    let sha: string;
    try {
      await waitFor('no client blocked on githa:events', async () => (await blockedClients()).length === 0);
      sha = await git.commit(work, { 'a.txt': 'orphaned\n' }, 'orphaned');
      await git.push(work, writer.url(`${repo}.git`), ['main']);
      const leaders = leadersOf(await cliVersions(cluster(), repo));
      expect(leaders).toHaveLength(1);
      const stale = cluster().backends.filter((b) => !leaders.includes(b.id));
      // The doomed githa takes the event, and its copies hang on the stopped stale backends.
      for (const b of stale) b.pause();
      process.kill(doomed.pid, 'SIGCONT');
      await waitFor('the event pending with the doomed githa', async () => (await cluster().redis.cli('XPENDING', 'githa:events', 'replicators', '-', '+', '10', 'doomed')).length > 0);
      await doomed.stop('SIGKILL');
      for (const b of stale) b.resume();
    } finally {
      process.kill(heir.pid, 'SIGCONT');
    }

    // Not from a scan (10 min away) and not from the group's new entries (none): from the take-over.
    await waitFor('both stale copies caught up by the heir', () => allCurrent(repo), 30_000);
    for (const b of cluster().backends) expect(await refOnDisk(b, `${repo}.git`, 'refs/heads/main')).toBe(sha);
    const version = Math.max(...Object.values(await cliVersions(cluster(), repo)));
    expect(heir.logLines().filter((l) => l.msg === 'catch-up' && l.repo === `${repo}.git` && l.version === version)).toHaveLength(2);
    await waitFor('the event acknowledged', async () => (await cluster().redis.cli('XPENDING', 'githa:events', 'replicators', '-', '+', '10')) === '');
  });
});
