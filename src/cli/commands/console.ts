/**
 * `githa console`: the operator console. A `githa> ` prompt that runs each
 * line as one githa operator command in a child process (never a shell;
 * lines are parsed by src/protocol/operator-command.ts). `exit`, `quit` or
 * Ctrl-D end it.
 *
 * This is what `ssh ops@githa` (no command) runs in a pseudo-terminal; it
 * also works on a local terminal, and without one (lines from a pipe, no
 * stdin for the commands).
 */
import { spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import type { Command } from 'commander';
import { OPERATOR_COMMANDS, parseOperatorCommand } from '../../protocol/operator-command.js';
import { EXIT, stdio } from '../output.js';

const PROMPT = 'githa> ';

export function register(program: Command): void {
  program
    .command('console')
    .description('an interactive prompt that runs githa operator commands (what `ssh ops@githa` opens)')
    .option('-c, --config <file>', 'configuration file (or GITHA_CONFIG), passed to every command')
    .action(async (opts: { config?: string }) => {
      process.exitCode = await runConsole(opts.config);
    });
}

async function runConsole(config: string | undefined): Promise<number> {
  const { out, err } = stdio;
  const input = process.stdin;
  const tty = input.isTTY === true && process.stdout.isTTY === true;
  const env = { ...process.env };
  if (config && !env.GITHA_CONFIG) env.GITHA_CONFIG = config;
  // Ctrl-C while a command runs interrupts the command (same process group), not the console.
  process.on('SIGINT', () => {});
  out.write(`githa operator console: ${OPERATOR_COMMANDS.join(', ')}; "help <command>" for details, "exit" or Ctrl-D to leave.\n`);
  const lines = tty ? terminalLines(input) : pipedLines(input);
  for (;;) {
    const line = await lines.next();
    if (line === null) break;
    const text = line.trim();
    if (text === '') continue;
    if (text === 'exit' || text === 'quit' || text === 'logout') break;
    const parsed = parseOperatorCommand(text);
    if (!parsed.ok) {
      err.write(`githa: ${parsed.message}\n`);
      continue;
    }
    const status = await runCommand(parsed.words, env, tty);
    if (status !== EXIT.OK) err.write(`(exit status ${status})\n`);
  }
  lines.close();
  // Leaving the console is not a failure of its last command: `exit` ends with 0.
  return EXIT.OK;
}

/** One command, as a child of this process: the terminal is its own while it runs. */
function runCommand(words: string[], env: NodeJS.ProcessEnv, tty: boolean): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [process.argv[1]!, ...words], {
      // On a terminal the command may prompt (lock, thaw): it reads the terminal. From a pipe the console owns stdin.
      stdio: [tty ? 'inherit' : 'ignore', 'inherit', 'inherit'],
      env,
    });
    child.once('error', (e) => {
      stdio.err.write(`githa: cannot run ${words[0]}: ${e.message}\n`);
      resolve(EXIT.FAILED);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : EXIT.FAILED)));
  });
}

interface LineSource {
  /** The next line, or null at end of input (Ctrl-D). */
  next(): Promise<string | null>;
  close(): void;
}

/**
 * A terminal: a fresh readline (line editing, history) for each prompt,
 * closed while the command runs so the command gets raw keystrokes and the
 * terminal back in cooked mode (process.stdin stops reading when paused).
 */
function terminalLines(input: NodeJS.ReadStream): LineSource {
  let history: string[] = [];
  return {
    next: () =>
      new Promise((resolve) => {
        const rl: Interface = createInterface({ input, output: process.stdout, terminal: true, prompt: PROMPT, history, historySize: 200, removeHistoryDuplicates: true });
        let answered = false;
        rl.on('history', (h: string[]) => (history = h));
        rl.on('line', (line) => {
          answered = true;
          rl.close();
          resolve(line);
        });
        rl.on('SIGINT', () => {
          // Ctrl-C at the prompt drops the line, like a shell.
          answered = true;
          process.stdout.write('^C\n');
          rl.close();
          resolve('');
        });
        rl.on('close', () => {
          if (answered) return;
          process.stdout.write('\n');
          resolve(null);
        });
        rl.prompt();
      }),
    close: () => {},
  };
}

/** Lines from a pipe: one reader for the whole input (it reads ahead). */
function pipedLines(input: NodeJS.ReadStream): LineSource {
  const rl = createInterface({ input, terminal: false });
  const iterator = rl[Symbol.asyncIterator]();
  return {
    async next() {
      stdio.out.write(PROMPT);
      const r = await iterator.next();
      if (r.done) {
        stdio.out.write('\n');
        return null;
      }
      stdio.out.write(`${r.value}\n`);
      return r.value;
    },
    close: () => rl.close(),
  };
}
