import type { RefCommand } from '../protocol/receive-pack-request.js';

/*
 * A write's command list as its marker keeps it (docs/redis.md `writing`
 * field `commands`): "<old> <new> <ref>" lines. Resolving an interrupted
 * write adopts a changed copy only when its refs outside these commands are
 * the recorded ones (docs/architecture.md "Failures resolved without a
 * human"), so the list must be whole: one over the cap is not stored at all,
 * and a marker without it is never adopted blind.
 */

/** At most this many commands are kept in a marker. */
export const MARKER_COMMANDS_MAX = 100;
/** At most this many bytes of command lines are kept in a marker. */
export const MARKER_COMMANDS_BYTES = 16 * 1024;

/** The stored form, or undefined when the list is over the cap (then it is unknown to the resolver). */
export function encodeCommands(commands: readonly RefCommand[]): string | undefined {
  if (commands.length > MARKER_COMMANDS_MAX) return undefined;
  const text = commands.map((c) => `${c.oldOid} ${c.newOid} ${c.ref}`).join('\n');
  return Buffer.byteLength(text, 'utf8') > MARKER_COMMANDS_BYTES ? undefined : text;
}

/** The commands of a stored list; undefined when absent or malformed (unknown). */
export function decodeCommands(text: string | undefined): RefCommand[] | undefined {
  if (text === undefined) return undefined;
  if (text === '') return [];
  const out: RefCommand[] = [];
  for (const line of text.split('\n')) {
    const [oldOid, newOid, ref, ...rest] = line.split(' ');
    if (!oldOid || !newOid || !ref || rest.length > 0) return undefined;
    out.push({ oldOid, newOid, ref });
  }
  return out;
}
