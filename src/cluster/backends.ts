import type { BackendClient, RepositoryAdmin } from '../backends/types.js';
import type { Config } from '../config/schema.js';
import { CatchUpError } from '../errors.js';
import type { Health } from './health.js';
import type { BackendView } from './routing.js';
import type { Accepts, Backend, BackendOverride } from './types.js';

/** The backends as the cluster's parts see them: configuration, operator overrides, health, Git clients. */
export interface BackendDirectory {
  backend(id: string): Backend;
  /** githa's own Git client of a backend (catch-up, checksums). */
  client(id: string): BackendClient;
  /** The backends routing may use now, in configuration order. */
  activeBackends(): Backend[];
  isEnabled(id: string): boolean;
  isWritable(id: string): boolean;
  /** Being drained (`githa backend drain`): placement gives it no new repository. */
  isDraining?(id: string): boolean;
  views(): BackendView[];
  usable(ids: readonly string[], accepts: Accepts): Backend[];
  /**
   * Calls `fn` when an operator override enables a backend (`enabled`) or
   * lets an enabled one take writes again (`writable`): it returns and is
   * caught up and verified at once (docs/architecture.md "Verified copies").
   */
  onReturn(fn: ReturnListener): () => void;
  /** githa's admin account on a backend (`backends[].admin`), or undefined when githa may not manage its repositories. */
  admin(id: string): RepositoryAdmin | undefined;
}

export type ReturnListener = (id: string, how: 'enabled' | 'writable') => void;

export class Backends implements BackendDirectory {
  private readonly byId: Map<string, Backend>;
  /** Runtime operator overrides (`githa backend disable|prevent-writes …`), kept current by the override watcher. */
  private overrides: ReadonlyMap<string, BackendOverride> = new Map();

  constructor(
    private readonly config: Pick<Config, 'backends'>,
    private readonly clients: ReadonlyMap<string, BackendClient>,
    private readonly health: Health,
    /** Admin accounts of the backends that have `admin` (src/backends/admin.ts). */
    private readonly admins: ReadonlyMap<string, RepositoryAdmin> = new Map(),
  ) {
    this.byId = new Map(config.backends.map((b) => [b.id, b as Backend]));
  }

  private readonly returnListeners = new Set<ReturnListener>();

  setOverrides(overrides: ReadonlyMap<string, BackendOverride>): void {
    const before = new Map(this.config.backends.map((b) => [b.id, { enabled: this.isEnabled(b.id), writable: this.isWritable(b.id) }]));
    this.overrides = overrides;
    for (const [id, was] of before) {
      const how = !was.enabled && this.isEnabled(id) ? 'enabled' : this.isEnabled(id) && !was.writable && this.isWritable(id) ? 'writable' : undefined;
      if (how) for (const fn of this.returnListeners) fn(id, how);
    }
  }

  onReturn(fn: ReturnListener): () => void {
    this.returnListeners.add(fn);
    return () => {
      this.returnListeners.delete(fn);
    };
  }

  admin(id: string): RepositoryAdmin | undefined {
    return this.admins.get(id);
  }

  isEnabled(id: string): boolean {
    return (this.overrides.get(id)?.enabled ?? this.byId.get(id)?.enabled) === true;
  }

  isWritable(id: string): boolean {
    return (this.overrides.get(id)?.writable ?? this.byId.get(id)?.writable) === true;
  }

  activeBackends(): Backend[] {
    return this.config.backends.filter((b) => this.isEnabled(b.id)) as Backend[];
  }

  backend(id: string): Backend {
    const b = this.byId.get(id);
    if (!b) throw new Error(`unknown backend ${id}`);
    return b;
  }

  client(id: string): BackendClient {
    const c = this.clients.get(id);
    if (!c) throw new CatchUpError(`backend ${id} has no endpoint githa can use as a Git client`);
    return c;
  }

  usable(ids: readonly string[], accepts: Accepts): Backend[] {
    return ids.map((id) => this.backend(id)).filter(accepts);
  }

  views(): BackendView[] {
    return this.config.backends.map((b) => ({
      id: b.id,
      zone: b.zone,
      enabled: this.isEnabled(b.id),
      writable: this.isWritable(b.id),
      healthy: this.health.isHealthy(b.id),
    }));
  }
}
