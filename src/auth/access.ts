/**
 * Authorization per repository and service (docs/security.md "Authorization").
 * Pure: rules are compiled once from the configuration; `decide` answers from
 * the repository's *name* and the identity alone, never from whether the
 * repository exists, so a refusal can look exactly like a missing repository.
 */
import { AccessDeniedError, RepositoryNotFoundError, type GithaError } from '../errors.js';
import { compileGlobs, type RepositoryMatcher } from './glob.js';

export type Access = 'none' | 'read' | 'write';
export type AccessService = 'git-upload-pack' | 'git-receive-pack' | 'git-upload-archive';

/** Who is asking: a user name, the groups it belongs to, and whether githa verified it. */
export interface Identity {
  readonly user: string;
  readonly groups: readonly string[];
  /** False for git://, for HTTP without (verified) credentials: the anonymous identity. */
  readonly authenticated: boolean;
}

export interface AccessRuleConfig {
  readonly repos: string | readonly string[];
  /** User names; `*` is every authenticated user. Absent (and no groups): everybody, anonymous included. */
  readonly users?: readonly string[] | undefined;
  readonly groups?: readonly string[] | undefined;
  readonly access: Access;
}

export interface AccessConfig {
  readonly default: Access;
  readonly rules: readonly AccessRuleConfig[];
}

interface CompiledRule {
  repos: RepositoryMatcher;
  users: ReadonlySet<string> | undefined;
  groups: ReadonlySet<string> | undefined;
  access: Access;
}

const RANK: Record<Access, number> = { none: 0, read: 1, write: 2 };

/** The access a service needs: receive-pack writes; upload-pack (every v2 command) and upload-archive read. */
export function requiredAccess(service: AccessService): Exclude<Access, 'none'> {
  return service === 'git-receive-pack' ? 'write' : 'read';
}

export function satisfies(granted: Access, needed: Access): boolean {
  return RANK[granted] >= RANK[needed];
}

export class AccessPolicy {
  private readonly anonymousIdentity: Identity;

  private constructor(
    private readonly rules: readonly CompiledRule[],
    private readonly fallback: Access,
    private readonly groupsOf: ReadonlyMap<string, readonly string[]>,
    readonly anonymousUser: string,
    /** False without an `access` section: everything is allowed and the backends decide (the drop-in default). */
    readonly enforced: boolean,
  ) {
    this.anonymousIdentity = Object.freeze({ user: anonymousUser, groups: [], authenticated: false });
  }

  /**
   * Compiles the `access` section. Without one, every identity gets `write`
   * everywhere: a configuration from before access rules keeps its behaviour.
   * `groups` maps a group to its members (config `auth.groups`).
   */
  static compile(access: AccessConfig | undefined, groups: Readonly<Record<string, readonly string[]>> = {}, anonymousUser = 'anonymous'): AccessPolicy {
    const groupsOf = new Map<string, string[]>();
    for (const [group, members] of Object.entries(groups)) {
      for (const m of members) groupsOf.set(m, [...(groupsOf.get(m) ?? []), group]);
    }
    if (!access) return new AccessPolicy([], 'write', groupsOf, anonymousUser, false);
    const rules = access.rules.map((r) => ({
      repos: compileGlobs(typeof r.repos === 'string' ? [r.repos] : r.repos),
      users: r.users ? new Set(r.users) : undefined,
      groups: r.groups ? new Set(r.groups) : undefined,
      access: r.access,
    }));
    return new AccessPolicy(rules, access.default, groupsOf, anonymousUser, true);
  }

  /** The identity of a user name: configured groups plus `extraGroups` (e.g. from the HTTP users file). */
  identify(user: string, authenticated: boolean, extraGroups: readonly string[] = []): Identity {
    if (!authenticated) return { user: this.anonymousUser, groups: [], authenticated: false };
    const groups = [...new Set([...(this.groupsOf.get(user) ?? []), ...extraGroups])];
    return { user, groups, authenticated: true };
  }

  /** The anonymous identity (git://, HTTP without verified credentials): one object, not one per request. */
  anonymous(): Identity {
    return this.anonymousIdentity;
  }

  /** The first rule that matches both the repository and the identity decides; else the default. */
  decide(identity: Identity, repo: string): Access {
    for (const rule of this.rules) {
      if (rule.repos(repo) && appliesTo(rule, identity)) return rule.access;
    }
    return this.fallback;
  }

  /**
   * Why `identity` may not use `service` on `repo`, or undefined when it may.
   * No read access gives exactly the error of a missing repository (same
   * class, same message: for a push, the one naming `githa create`), so
   * nobody learns that a repository exists.
   */
  denial(identity: Identity, repo: string, service: AccessService): GithaError | undefined {
    const granted = this.decide(identity, repo);
    if (satisfies(granted, requiredAccess(service))) return undefined;
    if (granted === 'none') return notFound(repo, service);
    return new AccessDeniedError(`${identity.user} has read-only access to ${repo}; pushing needs write access`);
  }
}

/**
 * The error githa answers for a repository that exists on no backend: the
 * same one (src/cluster/adoption.ts; a push is told how an operator creates
 * it, src/cluster/cluster.ts).
 */
export function notFound(repo: string, service?: AccessService): RepositoryNotFoundError {
  return service === 'git-receive-pack' ? RepositoryNotFoundError.forPush(repo) : RepositoryNotFoundError.missing(repo);
}

function appliesTo(rule: CompiledRule, id: Identity): boolean {
  if (!rule.users && !rule.groups) return true;
  // The anonymous identity matches by its name (auth.anonymousUser) only.
  if (rule.users?.has(id.user)) return true;
  if (!id.authenticated) return false;
  if (rule.users?.has('*')) return true;
  return id.groups.some((g) => rule.groups?.has(g) ?? false);
}

/**
 * Every user name the configuration grants something to by name: access
 * rules' users (not `*`), groups' members, the anonymous identity. An SSH
 * key's comment may not claim one of them (src/frontends/ssh/authorized-keys.ts).
 */
export function namesWithAccess(access: AccessConfig | undefined, groups: Readonly<Record<string, readonly string[]>> = {}, anonymousUser = 'anonymous'): Set<string> {
  const names = new Set<string>([anonymousUser]);
  for (const members of Object.values(groups)) for (const m of members) names.add(m);
  for (const r of access?.rules ?? []) for (const u of r.users ?? []) if (u !== '*') names.add(u);
  return names;
}
