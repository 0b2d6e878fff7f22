/**
 * A copy of the backend overrides in a local file (`backendOverridesFile`,
 * docs/config.md): Redis is the only place githa applies them from, but a
 * Redis that lost its data (or was restored from an older snapshot) forgets
 * them, and a disabled backend would silently serve again. `githa backend
 * disable|enable|…` writes every stored override here after each change;
 * `githa status` compares the two and warns when Redis lacks one the file
 * records (docs/operations.md "Redis lost or restored from an old snapshot").
 *
 * The file is JSON: `{ "backends": { "<id>": { "enabled": false, "by": …, "at": … } } }`,
 * written whole to a temporary file and renamed (never half-written).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { StoredOverride } from './overrides.js';

/** The overrides the file records (empty when it does not exist yet). Throws on a file that is not githa's JSON. */
export function readOverridesFile(path: string): Map<string, StoredOverride> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  const parsed = JSON.parse(text) as { backends?: Record<string, StoredOverride> };
  const out = new Map<string, StoredOverride>();
  for (const [id, o] of Object.entries(parsed.backends ?? {})) {
    const entry: StoredOverride = {};
    if (typeof o.enabled === 'boolean') entry.enabled = o.enabled;
    if (typeof o.writable === 'boolean') entry.writable = o.writable;
    if (entry.enabled === undefined && entry.writable === undefined) continue;
    if (typeof o.by === 'string') entry.by = o.by;
    if (typeof o.at === 'number') entry.at = o.at;
    out.set(id, entry);
  }
  return out;
}

/** Replaces the file with `stored` (every backend's override as Redis holds it now). */
export function writeOverridesFile(path: string, stored: ReadonlyMap<string, StoredOverride>): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ backends: Object.fromEntries([...stored].sort(([a], [b]) => a.localeCompare(b))) }, null, 2)}\n`);
  renameSync(tmp, path);
}

export interface LostOverride {
  backend: string;
  override: StoredOverride;
}

/**
 * The overrides the file records that Redis does not hold (a flag absent or
 * different in Redis): each would be lost silently.
 */
export function lostOverrides(file: ReadonlyMap<string, StoredOverride>, redis: ReadonlyMap<string, StoredOverride>): LostOverride[] {
  const lost: LostOverride[] = [];
  for (const [backend, o] of file) {
    const r = redis.get(backend);
    if ((o.enabled !== undefined && r?.enabled !== o.enabled) || (o.writable !== undefined && r?.writable !== o.writable)) lost.push({ backend, override: o });
  }
  return lost.sort((a, b) => a.backend.localeCompare(b.backend));
}
