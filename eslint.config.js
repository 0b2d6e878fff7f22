// ESLint flat config (issue 14 item 8). TypeScript files are linted type-aware: the
// parser asks the TypeScript project service (tsconfig.json), so rules such as
// no-floating-promises see the same types as `tsc --noEmit -p .`.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// The Node globals the plain .mjs/.js scripts (bench/, scripts/, this file) use; listed
// here rather than pulling in the `globals` package for a handful of names.
const nodeGlobals = Object.fromEntries(
  ['process', 'console', 'Buffer', 'URL', 'performance', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate'].map(
    (name) => [name, 'readonly'],
  ),
);

export default defineConfig(
  {
    ignores: ['dist/**', 'dist-tools/**', 'node_modules/**', 'coverage/**', 'bench/work/**', 'bench/.cache/**', '.githa-demo/**'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: nodeGlobals },
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // A promise nobody awaits loses its rejection (an unhandledRejection ends the
      // process) and its ordering: each one is awaited, handled, or marked `void` with a
      // comment saying why ignoring it is safe.
      '@typescript-eslint/no-floating-promises': 'error',
      // An async function handed to a callback that ignores what it returns (event
      // emitters, timers, http.createServer) floats its promise the same way.
      '@typescript-eslint/no-misused-promises': 'error',
      // The converse mistake: `await` on something that is not a promise waits for nothing.
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    rules: {
      // no-control-regex stays on: a validator that matches control characters on
      // purpose says so with an eslint-disable-next-line comment (src/auth/glob.ts).
      // The tree marks a parameter or binding it must name but does not use with a
      // leading underscore (an interface method's argument, a key removed from a rest
      // object); those are intentional, anything else unused is an error.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },
);
