import { readFileSync } from 'node:fs';

/**
 * githa's version, read once from package.json: one directory up from this
 * file both in src/ (tests) and in dist/ (the built program, shipped next to
 * its package.json).
 */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The agent githa names itself with to backends (gitprotocol-capabilities "agent"). */
export const AGENT = `githa/${VERSION}`;
