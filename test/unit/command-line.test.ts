import { describe, expect, it } from 'vitest';
import { parseOperatorCommand } from '../../src/protocol/operator-command.js';

describe('operator command lines', () => {
  it('splits plain words on blanks', () => {
    expect(parseOperatorCommand('status')).toEqual({ ok: true, words: ['status'] });
    expect(parseOperatorCommand('  thaw team/app.git\t--demote b2  ')).toEqual({ ok: true, words: ['thaw', 'team/app.git', '--demote', 'b2'] });
    expect(parseOperatorCommand('log team/app --limit=20 --json')).toEqual({ ok: true, words: ['log', 'team/app', '--limit=20', '--json'] });
  });

  it.each([
    ['status; rm -rf /', /";" is not accepted.*nothing was run/],
    ['status && reboot', /"&" is not accepted/],
    ['status | cat', /"\|" is not accepted/],
    ['status > /etc/passwd', /">" is not accepted/],
    ['repo $(id)', /"\$" is not accepted/],
    ['repo `id`', /"`" is not accepted/],
    ["repo 'team/app'", /"'" is not accepted/],
    ['repo "team/app"', /""" is not accepted/],
    ['repo team/*', /"\*" is not accepted/],
    ['repo ~root', /"~" is not accepted/],
    ['repo a\\ b', /"\\" is not accepted/],
    ['status # comment', /"#" is not accepted/],
    ['status\nreboot', /a line break is not accepted/],
    ['repo caf\u00e9', /unexpected character in "caf\?"/],
    ['repo a\u0007', /unexpected character/],
    ['', /no command given/],
    ['   ', /no command given/],
    ['ls -la', /"ls" is not a githa operator command; use one of: status, repo/],
    ['serve', /"serve" is not a githa operator command/],
    ['console', /"console" is not a githa operator command/],
    ['/bin/sh', /"\/bin\/sh" is not a githa operator command/],
    ['status ' + 'x'.repeat(1100), /longer than 1024/],
  ])('refuses %j', (line, message) => {
    const r = parseOperatorCommand(line);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });
});
