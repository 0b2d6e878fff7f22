import { describe, expect, it } from 'vitest';
import { selectedByPrefixes, widenLsRefs } from '../../src/protocol/ls-refs-widen.js';
import { decodeAll, encodePkts } from '../../src/protocol/pkt-line.js';
import { encodeLsRefsRequest } from '../../src/protocol/ls-refs.js';

describe('widenLsRefs', () => {
  it('drops ref-prefix arguments and keeps every other byte', () => {
    const req = encodeLsRefsRequest({ symrefs: true, peel: true, unborn: true, agent: 'git/2.47', refPrefixes: ['HEAD', 'refs/heads/', 'refs/tags/'] });
    const w = widenLsRefs(decodeAll(req));
    expect(w.prefixes).toEqual(['HEAD', 'refs/heads/', 'refs/tags/']);
    expect(w.request.equals(encodeLsRefsRequest({ symrefs: true, peel: true, unborn: true, agent: 'git/2.47' }))).toBe(true);
  });

  it('leaves a request without prefixes as it is', () => {
    const req = encodeLsRefsRequest({ symrefs: true });
    const w = widenLsRefs(decodeAll(req));
    expect(w.prefixes).toEqual([]);
    expect(w.request.equals(req)).toBe(true);
  });

  it('does not take a capability line for an argument', () => {
    const req = encodePkts(['command=ls-refs\n', 'ref-prefix refs/x\n', { type: 'delim' }, 'ref-prefix refs/heads/\n', { type: 'flush' }]);
    const w = widenLsRefs(decodeAll(req));
    expect(w.prefixes).toEqual(['refs/heads/']);
    expect(decodeAll(w.request)).toHaveLength(4);
  });

  it('refuses an empty prefix', () => {
    expect(() => widenLsRefs(decodeAll(encodePkts(['command=ls-refs\n', { type: 'delim' }, 'ref-prefix \n', { type: 'flush' }])))).toThrow(/empty ref-prefix/);
  });
});

describe('selectedByPrefixes', () => {
  const oid = 'a'.repeat(40);
  const line = (s: string): Buffer => Buffer.from(s);
  it('selects by the ref name, not by attributes', () => {
    expect(selectedByPrefixes(line(`${oid} HEAD symref-target:refs/heads/main\n`), ['HEAD'])).toBe(true);
    expect(selectedByPrefixes(line(`${oid} refs/heads/main\n`), ['refs/heads/m'])).toBe(true);
    expect(selectedByPrefixes(line(`${oid} refs/tags/v1 peeled:${oid}\n`), ['refs/heads/'])).toBe(false);
    expect(selectedByPrefixes(line(`${oid} refs/tags/v1 peeled:${oid}`), ['refs/tags/v1'])).toBe(true);
    expect(selectedByPrefixes(line(`unborn HEAD symref-target:refs/heads/main`), ['HEAD'])).toBe(true);
  });
  it('selects every line when the client sent no prefix', () => {
    expect(selectedByPrefixes(line(`${oid} refs/anything\n`), [])).toBe(true);
  });
});
