/**
 * `githa repo factor R 4` while a re-replication runs
 * (assigned: 3 copies + the replacement of a lost backend, `replacing` names
 * the pair) counts the lost backend and its replacement as two copies, adds
 * nothing, and DROP_LOST later leaves 3 assigned copies under a factor of 4.
 * The write quorum (copiesOf in src/cluster/assignment.ts) already counts the
 * pair once; so does changeFactor, raising and lowering.
 */
import { describe, expect, it } from 'vitest';
import { changeFactor } from '../../src/cluster/factor.js';
import { Lifecycle } from '../../src/cluster/lifecycle.js';
import { MemoryAdmin } from '../support/memory-admin.js';
import { memoryCluster } from '../support/memory-cluster.js';

const R = 'team/app.git';
const IDS = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];

describe('githa repo factor during a re-replication', () => {
  it('counts a lost backend and its replacement as one copy', async () => {
    const admins = new Map(IDS.map((id) => [id, new MemoryAdmin(id)]));
    const m = memoryCluster(IDS, { factor: 3, admins });
    await new Lifecycle(m.ctx, () => new Date()).create(R, { by: 'op' });
    const [a, b, lost] = (await m.store.read(R)).assigned!;
    const replacement = IDS.find((id) => ![a, b, lost].includes(id))!;
    m.store.assign(R, [a!, b!, lost!, replacement]);
    const read = m.store.read.bind(m.store);
    m.store.read = async (repo: string) => ({ ...(await read(repo)), replacing: new Map([[replacement, lost!]]) });
    const r = await changeFactor(m.ctx, R, 4, 'op');
    // Once the lost backend leaves (DROP_LOST), 4 copies must remain.
    expect(r.assigned.filter((x) => x !== lost)).toHaveLength(4);
  });

  it('lowered, leaves as many copies as the factor, a pair counting once', async () => {
    const admins = new Map(IDS.map((id) => [id, new MemoryAdmin(id)]));
    const m = memoryCluster(IDS, { factor: 3, admins });
    await new Lifecycle(m.ctx, () => new Date()).create(R, { by: 'op' });
    const [a, b, lost] = (await m.store.read(R)).assigned!;
    const replacement = IDS.find((id) => ![a, b, lost].includes(id))!;
    m.store.assign(R, [a!, b!, lost!, replacement]);
    const read = m.store.read.bind(m.store);
    m.store.read = async (repo: string) => ({ ...(await read(repo)), replacing: new Map([[replacement, lost!]]) });
    const r = await changeFactor(m.ctx, R, 2, 'op');
    const pair = r.assigned.includes(lost!) && r.assigned.includes(replacement) ? 1 : 0;
    expect(r.assigned.length - pair).toBe(2);
  });
});
