/**
 * Backend overrides lost with Redis (docs/operations.md "Redis lost or
 * restored from an old snapshot"): with `backendOverridesFile` set, every
 * `githa backend …` change is also written to that file, and `githa status`
 * warns (exit 1) when Redis holds no override the file records, naming the
 * command that applies it again and the one that accepts the configuration;
 * each named command is run here and ends the warning. A serving githa's
 * /status page shows the same warning. Real Redis, real
 * backends, the CLI as a real process.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startGitha } from '../support/githa.js';
import { waitFor } from '../support/state.js';
import { githaCli, githaJson } from './run.js';
import { useCliCluster } from './setup.js';

const { cluster, redis } = useCliCluster();

describe('backendOverridesFile', () => {
  it('status warns when Redis lost an override the file records; the commands it names end the warning', async () => {
    const c = cluster();
    const file = join(c.dir, `overrides-${process.pid}.json`);
    const githa = await startGitha(c, { config: { backendOverridesFile: file } });

    const disable = await githaCli(githa.configPath, ['backend', 'disable', 'b3']);
    expect(disable.code, disable.stdout + disable.stderr).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ backends: { b3: { enabled: false } } });
    const kept = await githaCli(githa.configPath, ['status']);
    expect(kept.stdout).not.toMatch(/overrides lost|Redis holds no such override/);

    // Redis loses its data: b3 would silently serve again.
    await redis().flushall();
    const lost = await githaCli(githa.configPath, ['status']);
    expect(lost.code).toBe(1);
    expect(lost.stdout).toMatch(/^attention: .*overrides lost: b3$/m);
    const line = new RegExp(
      `^warning: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} records b3 disabled \\(by \\S+ at \\S+\\), but Redis holds no such override ` +
        `\\(Redis lost its data or was restored from an older snapshot\\): b3 runs as configured now \\(enabled: yes, writable: yes\\)\\. ` +
        `Apply it again with: (githa backend disable b3); or keep it as it is \\(and update the file\\) with: (githa backend enable b3)$`,
      'm',
    );
    const m = line.exec(lost.stdout);
    expect(m, lost.stdout).not.toBeNull();
    // The serving githa's /status says so too, once its watcher has read Redis again (every 5 s, or on a change).
    const page = async (): Promise<string> => (await fetch(`${githa.adminUrl}/status`)).text();
    await waitFor('/status shows the lost override of b3', async () => /Overrides lost.*<code>b3<\/code>: recorded disabled by \S+, but Redis holds no such override/s.test(await page()), 15_000);
    const json = await githaJson<{ attention: string[]; lostOverrides: Array<{ backend: string; override: { enabled: boolean } }> }>(githa.configPath, ['status']);
    expect(json.data.attention).toContain('overrides lost: b3');
    expect(json.data.lostOverrides).toMatchObject([{ backend: 'b3', override: { enabled: false } }]);

    // The first command it names: applies the override again.
    const again = await githaCli(githa.configPath, m![1]!.split(' ').slice(1));
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await redis().hget('githa:backend:b3', 'override.enabled')).toBe('0');
    const applied = await githaCli(githa.configPath, ['status']);
    expect(applied.stdout).not.toMatch(/overrides lost|Redis holds no such override/);
    // The command returns once every serving githa applied the change: its /status no longer warns.
    expect(await page()).not.toContain('Overrides lost');

    // Lost again; the second command it names: accepts the configuration, and the file forgets the override.
    await redis().flushall();
    expect((await githaCli(githa.configPath, ['status'])).stdout).toMatch(/overrides lost: b3/);
    const accept = await githaCli(githa.configPath, m![2]!.split(' ').slice(1));
    expect(accept.code, accept.stdout + accept.stderr).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ backends: {} });
    const accepted = await githaCli(githa.configPath, ['status']);
    expect(accepted.code, accepted.stdout).toBe(0);
    expect(accepted.stdout).not.toMatch(/overrides lost|Redis holds no such override/);
  });

  it('a change to another backend after Redis lost an override keeps the lost one in the file, so status still warns', async () => {
    const c = cluster();
    const file = join(c.dir, `overrides-other-${process.pid}.json`);
    const githa = await startGitha(c, { config: { backendOverridesFile: file } });
    expect((await githaCli(githa.configPath, ['backend', 'disable', 'b3'])).code).toBe(0);
    await redis().flushall();

    // The operator, not yet aware of the loss, changes b2: the file must not forget b3.
    const other = await githaCli(githa.configPath, ['backend', 'prevent-writes', 'b2']);
    expect(other.code, other.stdout + other.stderr).toBe(1);
    expect(other.stdout).toMatch(/^warning: .*records b3 disabled.*Redis holds no such override.*githa status/m);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ backends: { b2: { writable: false }, b3: { enabled: false } } });
    const status = await githaCli(githa.configPath, ['status']);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/^attention: .*overrides lost: b3$/m);
    expect(await redis().hget('githa:backend:b3', 'override.enabled')).toBeNull();
  });
});
