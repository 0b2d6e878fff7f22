import { describe, expect, it } from 'vitest';
import { AccessPolicy, notFound, requiredAccess, type AccessConfig } from '../../src/auth/access.js';
import { AccessDeniedError, RepositoryNotFoundError } from '../../src/errors.js';

const RULES: AccessConfig = {
  default: 'none',
  rules: [
    { repos: 'secret/**', groups: ['admins'], access: 'write' },
    { repos: 'secret/**', access: 'none' },
    { repos: '**', groups: ['admins'], access: 'write' },
    { repos: ['team/*', 'shared/**'], groups: ['team'], access: 'write' },
    { repos: 'team/*', users: ['*'], access: 'read' },
    { repos: 'public/**', access: 'read' },
    { repos: 'mirror/*', users: ['anonymous', 'carol'], access: 'read' },
  ],
};

describe('access rules', () => {
  const policy = AccessPolicy.compile(RULES, { admins: ['root'], team: ['alice', 'bob'] });
  const alice = policy.identify('alice', true);
  const carol = policy.identify('carol', true);
  const root = policy.identify('root', true);
  const anon = policy.anonymous();

  it('the first rule that matches repository and identity decides; else the default', () => {
    expect(policy.decide(alice, 'team/app.git')).toBe('write');
    expect(policy.decide(carol, 'team/app.git')).toBe('read'); // users: ['*'] = any authenticated user
    expect(policy.decide(anon, 'team/app.git')).toBe('none');
    expect(policy.decide(alice, 'shared/a/b.git')).toBe('write');
    expect(policy.decide(carol, 'shared/a/b.git')).toBe('none');
    expect(policy.decide(root, 'secret/x.git')).toBe('write');
    expect(policy.decide(alice, 'secret/x.git')).toBe('none'); // a `none` rule carves out an exception
    expect(policy.decide(root, 'anything.git')).toBe('write');
    expect(policy.decide(anon, 'public/a/b.git')).toBe('read');
    expect(policy.decide(anon, 'mirror/x.git')).toBe('read');
    expect(policy.decide(carol, 'mirror/x.git')).toBe('read');
    expect(policy.decide(alice, 'mirror/x.git')).toBe('none');
    expect(policy.decide(alice, 'elsewhere.git')).toBe('none');
  });

  it('groups come from the config and, for HTTP users, from the users file', () => {
    expect(policy.identify('alice', true).groups).toEqual(['team']);
    expect(policy.identify('dave', true, ['team']).groups).toEqual(['team']);
    expect(policy.decide(policy.identify('dave', true, ['team']), 'team/app.git')).toBe('write');
  });

  it('the anonymous identity has no groups and never counts as an authenticated user', () => {
    const a = policy.identify('root', false);
    expect(a).toEqual({ user: 'anonymous', groups: [], authenticated: false });
    expect(policy.decide(a, 'anything.git')).toBe('none');
  });

  it('read covers upload-pack and upload-archive; write is receive-pack', () => {
    expect(requiredAccess('git-upload-pack')).toBe('read');
    expect(requiredAccess('git-upload-archive')).toBe('read');
    expect(requiredAccess('git-receive-pack')).toBe('write');
    expect(policy.denial(carol, 'team/app.git', 'git-upload-pack')).toBeUndefined();
    expect(policy.denial(carol, 'team/app.git', 'git-upload-archive')).toBeUndefined();
    expect(policy.denial(alice, 'team/app.git', 'git-receive-pack')).toBeUndefined();
  });

  it('a read-only push is AccessDeniedError naming user and repository', () => {
    const e = policy.denial(carol, 'team/app.git', 'git-receive-pack');
    expect(e).toBeInstanceOf(AccessDeniedError);
    expect(e?.message).toBe('carol has read-only access to team/app.git; pushing needs write access');
  });

  it('no read access is exactly the missing repository error, for every service', () => {
    for (const service of ['git-upload-pack', 'git-receive-pack', 'git-upload-archive'] as const) {
      const e = policy.denial(carol, 'secret/x.git', service);
      expect(e).toBeInstanceOf(RepositoryNotFoundError);
      expect(e?.message).toBe(notFound('secret/x.git', service).message);
      // A push to a repository on no backend is told how an operator creates it (src/cluster/cluster.ts): a refused one alike.
      expect(e?.message).toBe(service === 'git-receive-pack' ? 'repository secret/x.git not found; an operator creates it with: githa create secret/x.git' : 'repository secret/x.git not found');
    }
  });

  it('without an access section everything is allowed (the backends decide)', () => {
    const open = AccessPolicy.compile(undefined);
    expect(open.enforced).toBe(false);
    expect(open.decide(open.anonymous(), 'any/thing.git')).toBe('write');
    expect(open.denial(open.anonymous(), 'any/thing.git', 'git-receive-pack')).toBeUndefined();
  });

  it('a configured anonymous name is matched by rules', () => {
    const p = AccessPolicy.compile({ default: 'none', rules: [{ repos: '**', users: ['guest'], access: 'read' }] }, {}, 'guest');
    expect(p.anonymous().user).toBe('guest');
    expect(p.decide(p.anonymous(), 'x.git')).toBe('read');
  });
});
