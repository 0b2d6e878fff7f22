/**
 * Runtime backend overrides (`githa backend list | disable | enable |
 * prevent-writes | allow-writes`): stored in Redis and in force in every
 * serving githa by the time the command returns. Real dev cluster, two real
 * githa processes, the CLI as a real process; which backend served a read is
 * read from that backend's own access log.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { cliVersions, leadersOf, waitFor } from '../support/state.js';
import { githaCli, githaJson } from './run.js';
import { pushedRepo, useCliCluster } from './setup.js';

describe('githa backend', () => {
  const { cluster, redis } = useCliCluster();
  // A failed test must not leave a backend disabled for the next one.
  afterEach(async () => {
    for (const b of ['b1', 'b2', 'b3']) await redis().hdel(`githa:backend:${b}`, 'override.enabled', 'override.writable', 'override.maintenance');
    await redis().publish('githa:overrides', '{}');
  });
  const cliHash = (_c: unknown, key: string): Promise<Record<string, string>> => redis().hgetall(key);

  /**
   * lighttpd buffers its access log: a request to a unique URL, waited for in
   * the log, proves every earlier line is there. Returns the mark's log text.
   */
  let marks = 0;
  async function mark(id: string): Promise<string> {
    const name = `githa-test-mark-${process.pid}-${++marks}`;
    await fetch(`${cluster().backend(id).httpUrl}${name}.git/info/refs?service=git-upload-pack`).then((r) => r.arrayBuffer());
    // The access log line, not git-http-backend's complaint on stderr (unbuffered, in the same file).
    const line = `"GET /git/${name}.git/info/refs`;
    await waitFor(`${id}'s access log shows ${name}`, () => readFileSync(cluster().backend(id).logs.http, 'utf8').includes(line), 10_000);
    return line;
  }
  /** Requests for `repo` that backend `id` logged between two marks. */
  function served(id: string, from: string, to: string, repo: string): string[] {
    const text = readFileSync(cluster().backend(id).logs.http, 'utf8');
    return text.slice(text.indexOf(from), text.indexOf(to)).split('\n')// Backends are asked for `X` (docs/protocol.md "Where a backend keeps a repository").
      .filter((l) => l.includes(`/${repo}/`) || l.includes(`/${repo}.git/`));
  }

  it('disable b2 with two githas running: from the moment the command returns no read goes to b2, list shows it; enable restores', async () => {
    const [g1, g2] = await Promise.all([startGitha(cluster(), { logLevel: 'info' }), startGitha(cluster(), { logLevel: 'info' })]);
    const git = GitClient.forCluster(cluster());
    const repo = 'ops/dis';
    await pushedRepo(cluster(), git, g1, repo);
    await waitFor('every backend leads', async () => leadersOf(await cliVersions(cluster(), repo)).length === 3);
    // Reads are spread over the leaders: b2 serves some of them before.
    const m0 = await mark('b2');
    for (let i = 0; i < 6; i++) await git.lsRemote((i % 2 ? g2 : g1).url(repo));
    const m1 = await mark('b2');
    expect(served('b2', m0, m1, repo).length).toBeGreaterThan(0);

    const disabled = await githaCli(g1.configPath, ['backend', 'disable', 'b2']);
    expect(disabled.stderr).toBe('');
    expect(disabled.code).toBe(0);
    expect(disabled.stdout).toMatch(/^b2 disabled \(enabled: no, writable: yes; changed by \S+@\S+\)$/m);
    expect(disabled.stdout).toMatch(/^in force in 2 of 2 serving githa processes \(test-githa-\d+, test-githa-\d+\)$/m);
    const m2 = await mark('b2');
    const [o1, o3] = [await mark('b1'), await mark('b3')];
    for (let i = 0; i < 10; i++) {
      await git.lsRemote((i % 2 ? g2 : g1).url(repo));
      if (i % 5 === 0) await git.clone((i % 2 ? g1 : g2).url(repo));
    }
    const m3 = await mark('b2');
    expect(served('b2', m2, m3, repo)).toEqual([]);
    const [p1, p3] = [await mark('b1'), await mark('b3')];
    expect(served('b1', o1, p1, repo).length + served('b3', o3, p3, repo).length).toBeGreaterThanOrEqual(10);

    const stored = await cliHash(cluster(), 'githa:backend:b2');
    expect(stored).toMatchObject({ 'override.enabled': '0', 'override.by': expect.stringMatching(/@/) });
    expect(Number(stored['override.at'])).toBeGreaterThan(Date.now() - 60_000);
    expect(stored.health).toBe('up'); // the shared health fields are left alone
    const list = await githaJson(g2.configPath, ['backend', 'list']);
    expect(list.code).toBe(0);
    expect(list.data.backends.find((b: { id: string }) => b.id === 'b2')).toMatchObject({
      id: 'b2',
      enabled: false,
      writable: true,
      configured: { enabled: true, writable: true },
      override: { enabled: false },
    });
    const human = await githaCli(g2.configPath, ['backend', 'list']);
    // Columns: BACKEND ZONE ENABLED WRITABLE DRAINED HEALTH ENDPOINTS CHANGED BY, CHANGED AT.
    expect(human.stdout).toMatch(/^b2\s+-\s+no \(override\)\s+yes\s+-\s+up\s+http,ssh,git\s+\S+@\S+\s+\d{4}-/m);
    expect(human.stdout).toMatch(/^b1\s+-\s+yes\s+yes\s+-\s+up/m);
    // Both githas logged the change.
    for (const g of [g1, g2]) {
      expect(g.logLines().some((l) => l.msg === 'backend override changed' && l.backend === 'b2' && l.enabled === false)).toBe(true);
    }
    // status shows it too.
    const st = await githaJson(g1.configPath, ['status']);
    expect(st.data.backends.find((b: { id: string }) => b.id === 'b2')).toMatchObject({ enabled: false });

    const enabled = await githaCli(g2.configPath, ['backend', 'enable', 'b2']);
    expect(enabled.code).toBe(0);
    expect(enabled.stdout).toMatch(/^b2 enabled \(enabled: yes, writable: yes;/m);
    expect(enabled.stdout).toMatch(/in force in 2 of 2 serving githa processes/);
    // Back to the configuration: no override field left.
    expect(await cliHash(cluster(), 'githa:backend:b2')).not.toHaveProperty('override.enabled');
    // Round robin over the three leaders again: b2 serves within a few reads.
    let servedByB2 = 0;
    for (let round = 0; round < 6 && servedByB2 === 0; round++) {
      const m4 = await mark('b2');
      for (let i = 0; i < 5; i++) await git.lsRemote((i % 2 ? g2 : g1).url(repo));
      servedByB2 = served('b2', m4, await mark('b2'), repo).length;
    }
    expect(servedByB2).toBeGreaterThan(0);
    const after = await githaJson(g1.configPath, ['backend', 'list']);
    expect(after.data.backends.find((b: { id: string }) => b.id === 'b2')).toMatchObject({ enabled: true, configured: { enabled: true } });
    expect(after.data.backends.find((b: { id: string }) => b.id === 'b2')).not.toHaveProperty('override');
  });

  it('prevent-writes on two backends sends pushes to the third; allow-writes restores; a githa started later applies stored overrides', async () => {
    const g1 = await startGitha(cluster(), { logLevel: 'info' });
    const git = GitClient.forCluster(cluster());
    const repo = 'ops/pw';
    const { work } = await pushedRepo(cluster(), git, g1, repo);
    for (const b of ['b1', 'b3']) {
      const r = await githaCli(g1.configPath, ['backend', 'prevent-writes', b]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^${b} takes no writes \\(enabled: yes, writable: no;`, 'm'));
    }
    // A githa started now reads the stored overrides at start.
    const g2 = await startGitha(cluster(), { logLevel: 'info' });
    for (const g of [g1, g2]) {
      await git.commit(work, { 'n.txt': `${Date.now()}\n` }, 'next');
      await git.push(work, g.url(repo), ['main']);
      const newest = await githaJson(g.configPath, ['log', repo, '--limit', '20']);
      const pushes = (newest.data as Array<Record<string, string>>).filter((e) => e.event === 'push');
      expect(pushes.at(-1)).toMatchObject({ backend: 'b2' });
    }
    const list = await githaJson(g1.configPath, ['backend', 'list']);
    expect(list.data.backends.map((b: { id: string; writable: boolean }) => [b.id, b.writable])).toEqual([['b1', false], ['b2', true], ['b3', false]]);
    for (const b of ['b1', 'b3']) expect((await githaCli(g1.configPath, ['backend', 'allow-writes', b])).code).toBe(0);
    const restored = await githaJson(g1.configPath, ['backend', 'list']);
    expect(restored.data.backends.every((b: { writable: boolean }) => b.writable)).toBe(true);
  });

  it('refuses an unknown backend (exit 2) and warns when disabling leaves fewer backends than the write quorum (exit 1)', async () => {
    const g1 = await startGitha(cluster(), { logLevel: 'info' });
    const unknown = await githaCli(g1.configPath, ['backend', 'disable', 'b9']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown backend "b9": the configured backends are b1, b2, b3/);
    expect(await cliHash(cluster(), 'githa:backend:b9')).toEqual({});

    expect((await githaCli(g1.configPath, ['backend', 'disable', 'b1'])).code).toBe(0);
    const second = await githaCli(g1.configPath, ['backend', 'disable', 'b2']);
    expect(second.code).toBe(1);
    expect(second.stdout).toMatch(/^b2 disabled/m);
    expect(second.stdout).toMatch(/warning: 1 of 3 backends enabled \(b3\) and replication\.writeQuorum is 2: every write will be refused/);
    const list = await githaCli(g1.configPath, ['backend', 'list']);
    expect(list.code).toBe(1);
    for (const b of ['b1', 'b2']) expect((await githaCli(g1.configPath, ['backend', 'enable', b])).code).toBe(0);
    expect((await githaCli(g1.configPath, ['backend', 'list'])).code).toBe(0);
  });

  it('disable --maintenance marks the backend as coming back (no re-replication), shown by list and status; enable removes the mark', async () => {
    const g1 = await startGitha(cluster(), { logLevel: 'info' });
    const disabled = await githaCli(g1.configPath, ['backend', 'disable', 'b3', '--maintenance']);
    expect(disabled.code).toBe(0);
    expect(disabled.stdout).toMatch(/^b3 disabled for maintenance \(enabled: no, writable: yes; changed by \S+@\S+\)$/m);
    expect(await cliHash(cluster(), 'githa:backend:b3')).toMatchObject({ 'override.enabled': '0', 'override.maintenance': '1' });
    const list = await githaJson(g1.configPath, ['backend', 'list']);
    expect(list.data.backends.find((b) => b.id === 'b3')).toMatchObject({ enabled: false, maintenance: true });
    expect((await githaCli(g1.configPath, ['status'])).stdout).toMatch(/^b3 .*no \(override\), maintenance/m);
    // A plain disable is no maintenance; enable clears both.
    expect((await githaCli(g1.configPath, ['backend', 'disable', 'b3'])).code).toBe(0);
    expect(await cliHash(cluster(), 'githa:backend:b3')).not.toHaveProperty('override.maintenance');
    expect((await githaCli(g1.configPath, ['backend', 'disable', 'b3', '--maintenance'])).code).toBe(0);
    expect((await githaCli(g1.configPath, ['backend', 'enable', 'b3'])).code).toBe(0);
    const after = await cliHash(cluster(), 'githa:backend:b3');
    expect(after).not.toHaveProperty('override.maintenance');
    expect(after).not.toHaveProperty('override.enabled');
  });
});
