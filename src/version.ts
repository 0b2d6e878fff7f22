import { existsSync, readFileSync } from 'node:fs';

/**
 * githa's version, read once from its package.json: the nearest one above
 * this file whose name is githa — one directory up in src/ (tests) and in
 * dist/ (the built program, shipped next to its package.json), two up in
 * dist-tools/src/ (the tools' build).
 */
function readVersion(): string {
  for (const up of ['../package.json', '../../package.json']) {
    const url = new URL(up, import.meta.url);
    if (!existsSync(url)) continue;
    const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'githa' && pkg.version) return pkg.version;
  }
  throw new Error('githa: cannot find its package.json');
}

export const VERSION: string = readVersion();

/** The agent githa names itself with to backends (gitprotocol-capabilities "agent"). */
export const AGENT = `githa/${VERSION}`;
