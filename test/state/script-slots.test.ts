/**
 * Every script touches keys of one slot (docs/redis.md "On Redis Cluster"):
 * a Redis Cluster refuses a script whose keys hash to different slots
 * (CROSSSLOT). Checked for every exported descriptor of src/state/scripts/,
 * with Redis Cluster's slot function (cluster spec, "Keys distribution
 * model": CRC16 of the hash tag, modulo 16384).
 */
import { describe, expect, it } from 'vitest';
import { Keys } from '../../src/state/keys.js';
import type { ScriptDescriptor } from '../../src/state/script.js';
import * as copy from '../../src/state/scripts/copy.js';
import * as lifecycle from '../../src/state/scripts/lifecycle.js';
import * as repair from '../../src/state/scripts/repair.js';
import * as write from '../../src/state/scripts/write.js';

/** CRC16-CCITT (XMODEM) of the key's hash tag (the text between the first `{` and the next `}`, when not empty), mod 16384. */
function calculateSlot(key: string): number {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

const isDescriptor = (v: unknown): v is ScriptDescriptor<unknown[], unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { lua?: unknown }).lua === 'string' && typeof (v as { keys?: unknown }).keys === 'function';

const descriptors = (Object.entries({ ...copy, ...lifecycle, ...repair, ...write }) as Array<[string, unknown]>).filter((e): e is [string, ScriptDescriptor<unknown[], unknown>] => isDescriptor(e[1]));

describe('script keys on Redis Cluster', () => {
  it('finds the scripts, and slots as Redis computes them', () => {
    expect(descriptors.length).toBeGreaterThanOrEqual(20);
    // CLUSTER KEYSLOT on redis-server 7.0: githa:repo:{rc/a.git}:versions → 5114, githa:repos → 7890.
    expect(calculateSlot('githa:repo:{rc/a.git}:versions')).toBe(5114);
    expect(calculateSlot('githa:repos')).toBe(7890);
  });

  for (const [name, script] of descriptors) {
    it(`${name}: every key in the repository's slot`, () => {
      for (const prefix of ['githa:', 'x:']) {
        const keys = new Keys(prefix);
        // The key functions read the repository and, for the copy locks, a backend id; the other arguments only shape ARGV.
        const list = script.keys(keys, 'team/app.git', 'b1', 'token', 1000);
        expect(list.length).toBeGreaterThan(0);
        expect(new Set(list.map((k) => calculateSlot(k)))).toEqual(new Set([calculateSlot(keys.versions('team/app.git'))]));
      }
    });
  }
});
