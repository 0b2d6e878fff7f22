import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { argon2id, bcrypt } from 'hash-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { padFor, parseUsersFile, UsersFile } from '../../src/auth/users-file.js';
import { VerifyPool, type HashRef } from '../../src/auth/verify-pool.js';

const dir = mkdtempSync(join(tmpdir(), 'githa-users-'));
const pool = new VerifyPool({ workers: 1, maxQueue: 16 });
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await pool.close();
});
const verifyHash = (target: HashRef, password: string): Promise<boolean> => pool.verify({ target, password, pad: undefined });

async function bcryptHash(password: string, prefix = '$2b$'): Promise<string> {
  const h = await bcrypt({ password, salt: randomBytes(16), costFactor: 4, outputType: 'encoded' });
  return h.replace(/^\$2[aby]\$/, prefix);
}
const argon = (password: string): Promise<string> =>
  argon2id({ password, salt: randomBytes(16), parallelism: 1, iterations: 2, memorySize: 512, hashLength: 32, outputType: 'encoded' });
const token = (secret: string): string => `$sha256$${createHash('sha256').update(secret).digest('hex')}`;

describe('users file', () => {
  it('parses user:hash[:groups], skipping comments and blank lines', async () => {
    const b = await bcryptHash('pw');
    const a = await argon('pw');
    const { users, problems } = parseUsersFile(`# users\n\nalice:${b}:team,admins\nbob:${a}\r\nci-bot:${token('t0k3n')}:\n`);
    expect(problems).toEqual([]);
    expect([...users.keys()]).toEqual(['alice', 'bob', 'ci-bot']);
    expect(users.get('alice')).toMatchObject({ kind: 'bcrypt', groups: ['team', 'admins'] });
    expect(users.get('bob')).toMatchObject({ kind: 'argon2', groups: [] });
    expect(users.get('ci-bot')).toMatchObject({ kind: 'token', groups: [] });
  });

  it('reports bad lines by number, without their content, and keeps the good ones', async () => {
    const b = await bcryptHash('pw');
    const { users, problems } = parseUsersFile(
      ['plaintext:hunter2', `bad user:${b}`, 'nohash', `dup:${b}`, `dup:${b}`, `x:${b}:bad group`, `ok:${b}`, `md5:$apr1$abc$def`].join('\n'),
    );
    expect([...users.keys()]).toEqual(['dup', 'ok']);
    expect(problems).toHaveLength(6);
    expect(problems.join('\n')).not.toContain('hunter2');
    expect(problems[0]).toMatch(/^line 1: /);
  });

  it('verifies bcrypt ($2a$, $2b$, $2y$), argon2id and tokens', async () => {
    for (const prefix of ['$2a$', '$2b$', '$2y$']) {
      const hash = await bcryptHash('right', prefix);
      expect(await verifyHash({ kind: 'bcrypt', hash }, 'right')).toBe(true);
      expect(await verifyHash({ kind: 'bcrypt', hash }, 'wrong')).toBe(false);
    }
    const a = await argon('right');
    expect(await verifyHash({ kind: 'argon2', hash: a }, 'right')).toBe(true);
    expect(await verifyHash({ kind: 'argon2', hash: a }, 'wrong')).toBe(false);
    expect(await verifyHash({ kind: 'token', hash: token('s3cret') }, 's3cret')).toBe(true);
    expect(await verifyHash({ kind: 'token', hash: token('s3cret') }, 's3cret ')).toBe(false);
  });

  it('pads failures with the slow hash most users have', async () => {
    const cost5 = (password: string): Promise<string> => bcrypt({ password, salt: randomBytes(16), costFactor: 5, outputType: 'encoded' });
    const [b5, c5, b4] = [await cost5('x'), await cost5('z'), await bcryptHash('y')];
    const { users } = parseUsersFile(`a:${b4}\nb:${b5}\nc:${c5}\nt:${token('t')}\n`);
    // Two of the three slow hashes have cost 5.
    expect(padFor(users)).toEqual({ kind: 'bcrypt', hash: b5 });
    // Only tokens: the built-in bcrypt hash of cost 10.
    expect(padFor(parseUsersFile(`t:${token('t')}\n`).users).hash).toMatch(/^\$2a\$10\$/);
  });

  it('re-reads the file when it changes, and forgets cached results then', async () => {
    const path = join(dir, 'users-reload');
    writeFileSync(path, `alice:${await bcryptHash('one')}\n`);
    const problems: string[] = [];
    const file = new UsersFile(path, (m) => problems.push(m), { cacheMs: 60_000 });
    expect((await file.verify('alice', 'one'))?.user).toBe('alice');
    expect(await file.verify('alice', 'two')).toBeUndefined();
    // A different size makes the change visible even within the same mtime tick.
    writeFileSync(path, `alice:${await bcryptHash('two')}:team\n# changed\n`);
    // Nothing remembered survives the change, whoever asks first.
    expect(file.remembered('alice', 'one')).toBeUndefined();
    expect(await file.verify('alice', 'one')).toBeUndefined();
    expect(await file.verify('alice', 'two')).toMatchObject({ user: 'alice', groups: ['team'] });
    expect(await file.verify('nobody', 'two')).toBeUndefined();
    expect(problems).toEqual([]);
  });

  it('remembers results for cacheMs only', async () => {
    const path = join(dir, 'users-cache');
    writeFileSync(path, `alice:${await bcryptHash('pw')}\n`);
    let now = 0;
    const file = new UsersFile(path, () => {}, { cacheMs: 1000, now: () => now });
    const first = file.verify('alice', 'pw');
    expect(file.verify('alice', 'pw')).toBe(first); // the same promise: one bcrypt for a burst of requests
    await first;
    now = 1001;
    expect(file.verify('alice', 'pw')).not.toBe(first);
  });

  it('a missing file refuses everybody and says so once', async () => {
    const problems: string[] = [];
    const file = new UsersFile(join(dir, 'absent'), (m) => problems.push(m), { cacheMs: 0 });
    expect(await file.verify('alice', 'pw')).toBeUndefined();
    expect(await file.verify('alice', 'pw')).toBeUndefined();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('ENOENT');
  });
});
