/**
 * What the operator CLI prints of text others chose (a commit's subject in
 * the promote/demote prompt, any pusher's; a backend's error in a log line)
 * reaches the operator's terminal without its control characters: an escape
 * sequence there could erase the lines that name lost commits, move the
 * cursor over them, or set the clipboard (OSC 52).
 */
import { describe, expect, it } from 'vitest';
import { describeLoss } from '../../src/cli/commands/thaw.js';
import { formatLogLine } from '../../src/cli/pretty-log.js';

// C0 (ESC, CR, BEL), DEL and C1 (CSI as one character).
// eslint-disable-next-line no-control-regex -- control characters are what is looked for
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

describe('text from others on the operator terminal', () => {
  it('a lost commit\'s subject in the prompt has no control characters', () => {
    const subject = 'fix\x1b[1A\x1b[2K\r    refs/heads/main: fast-forward, nothing lost\x07\x9b2K\x1b]52;c;ZXZpbA==\x07';
    const lines = describeLoss(
      { ref: 'refs/heads/main', from: 'a'.repeat(40), to: 'b'.repeat(40), kind: 'lost', lost: [{ oid: 'c'.repeat(40), parents: [], subject }] },
      'b2',
      'b1',
    );
    for (const line of lines) expect(line).not.toMatch(CONTROL);
    expect(lines.join('\n')).toContain('fix');
  });

  it('a log line\'s message and values have no control characters', () => {
    const line = JSON.stringify({ level: 50, time: 0, msg: 'copy failed\x1b[2K', backend: 'b2', detail: '\x1b]52;c;ZXZpbA==\x07', why: 'x\x9b1A', n: 3 });
    const shown = formatLogLine(line);
    expect(shown).not.toMatch(CONTROL);
    expect(shown).toContain('backend=b2');
  });
});
