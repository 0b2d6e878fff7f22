/**
 * githa's version comes from package.json alone (src/version.ts), from the
 * sources (tests) and from the built program in dist/ (global setup builds it).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AGENT, VERSION } from '../../src/version.js';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version: string };

describe('version', () => {
  it("is package.json's, and names githa to backends", () => {
    expect(VERSION).toBe(pkg.version);
    expect(AGENT).toBe(`githa/${pkg.version}`);
  });

  it('is what the built program prints', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [resolve(root, 'dist/cli/main.js'), '--version']);
    expect(stdout.trim()).toBe(pkg.version);
  });
});
