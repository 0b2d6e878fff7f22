/**
 * The operator console's command lines (`ssh ops@githa status --json`, or a
 * line typed at `githa> `): split on whitespace, never given to a shell. A
 * line with anything a shell would interpret is refused as a whole, so
 * `status; rm -rf /` runs nothing at all, and every word must be plain.
 *
 * Pure code with no imports, below both of its users: the SSH front end
 * (src/frontends/ssh/operator.ts, the `exec` request) and `githa console`
 * (src/cli/commands/console.ts), like the Git SSH exec line in request.ts
 * (docs/architecture.md, layout).
 */

/** githa's operator commands: the only first words the console runs. */
export const OPERATOR_COMMANDS = ['status', 'repo', 'log', 'thaw', 'lock', 'sync', 'verify', 'recover', 'dataloss', 'backend', 'help'] as const;

/** Characters a shell would act on; named in the refusal so the operator sees what to drop. */
const SHELL_META = /[;|&$`<>(){}'"\\*?[\]~!#\n\r]/;
/** Repository paths, backend ids, options, numbers, durations, `key=value`. */
const PLAIN_WORD = /^[A-Za-z0-9_.,:=@%+/-]+$/;
const MAX_LENGTH = 1024;

export type CommandLine = { ok: true; words: string[] } | { ok: false; message: string };

/** Parses one command line; `message` says why it was refused (nothing ran). */
export function parseOperatorCommand(line: string): CommandLine {
  if (line.length > MAX_LENGTH) return { ok: false, message: `command longer than ${MAX_LENGTH} characters` };
  const meta = SHELL_META.exec(line);
  if (meta) {
    const shown = meta[0] === '\n' || meta[0] === '\r' ? 'a line break' : `"${meta[0]}"`;
    return {
      ok: false,
      message: `${shown} is not accepted: the operator console runs one githa command without a shell (no quoting, pipes, redirections or command lists); nothing was run`,
    };
  }
  const words = line.split(/[ \t]+/).filter((w) => w !== '');
  if (words.length === 0) return { ok: false, message: `no command given; one of: ${OPERATOR_COMMANDS.join(', ')}` };
  const bad = words.find((w) => !PLAIN_WORD.test(w));
  if (bad !== undefined) {
    return { ok: false, message: `unexpected character in "${printable(bad)}": words may hold letters, digits and _ . , : = @ % + / - only; nothing was run` };
  }
  const first = words[0]!;
  if (!(OPERATOR_COMMANDS as readonly string[]).includes(first)) {
    return { ok: false, message: `"${printable(first)}" is not a githa operator command; use one of: ${OPERATOR_COMMANDS.join(', ')}` };
  }
  return { ok: true, words };
}

function printable(word: string): string {
  return word.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}
