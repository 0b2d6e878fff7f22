/** src/cluster/read-wait.ts: when a read waits for a repaired copy instead of failing (docs/architecture.md "A read"). */
import { describe, expect, it } from 'vitest';
import { repairedForTransport } from '../../src/cluster/read-wait.js';
import type { BackendView } from '../../src/cluster/routing.js';

const view = (id: string, over: Partial<BackendView> = {}): BackendView => ({ id, enabled: true, writable: true, healthy: true, ...over });
const views = [view('b1'), view('b2'), view('b3')];
const http = (id: string): boolean => id !== 'b3';

describe('repairedForTransport', () => {
  it('names the drifted copies this transport can use when no leader speaks it', () => {
    expect(repairedForTransport({ kind: 'serve', candidates: ['b3'] }, views, { notLeaders: new Set(['b1', 'b2']) }, http)).toEqual(['b1', 'b2']);
  });

  it('names none when a leader speaks the transport', () => {
    expect(repairedForTransport({ kind: 'serve', candidates: ['b3', 'b2'] }, views, { notLeaders: new Set(['b1']) }, http)).toEqual([]);
  });

  it('leaves out disabled and unhealthy copies, and those the transport cannot use', () => {
    const some = [view('b1', { enabled: false }), view('b2', { healthy: false }), view('b3'), view('b4')];
    expect(repairedForTransport({ kind: 'serve', candidates: ['b3'] }, some, { notLeaders: new Set(['b1', 'b2', 'b4']) }, (id) => id !== 'b3')).toEqual(['b4']);
    expect(repairedForTransport({ kind: 'serve', candidates: ['b3'] }, views, { notLeaders: new Set(['b3']) }, http)).toEqual([]);
  });

  it('names none without leaders, or for a plan that is not a serve', () => {
    expect(repairedForTransport({ kind: 'serve', candidates: [] }, views, { notLeaders: new Set(['b1']) }, http)).toEqual([]);
    expect(repairedForTransport({ kind: 'no-leader', leaders: [] }, views, { notLeaders: new Set(['b1']) }, http)).toEqual([]);
  });
});
