/**
 * The attacks of issue 19 items 1–6, each a loop bounded in count (and
 * stopped with the phase), loopback only, from their own source addresses
 * (Linux routes all of 127/8 over lo) so that githa's per-address limits
 * meet the attacker, not the legitimate clients on 127.0.0.1:
 *
 * 1. gzip receive-pack POSTs with ~15 MiB command lists (under the
 *    per-request budget), no flush-pkt, left open — 127.0.0.10;
 * 2. one SSH connection opening 30 exec channels of git-upload-pack and
 *    disconnecting without a want, repeatedly (user mallory);
 * 3. idle git:// connections after the request line — 127.0.0.5;
 * 4. wrong Basic passwords for bob from 8 clients — 127.0.0.6–9;
 * 5. a push (mallory) trickling its pack one byte a second;
 * 6. idle pre-auth SSH connections from 127.0.0.2 and 127.0.0.3.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { constants, gzipSync } from 'node:zlib';
import ssh2 from 'ssh2';
import type { SoakEnv } from './env.js';

function pkt(payload: string | Buffer): Buffer {
  const b = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'latin1');
  return Buffer.concat([Buffer.from((b.length + 4).toString(16).padStart(4, '0')), b]);
}

const ZERO = '0'.repeat(40);
const NEW_OID = '1'.repeat(40);

/** What one attack did: attempts made, and what it saw as refused (its own view; the report also reads githa's metrics). */
export interface AttackStats {
  attempts: number;
  refusedSeen: number;
}

export class Attacks {
  private stopped = false;
  private readonly sockets = new Set<Socket>();
  private readonly clients = new Set<ssh2.Client>();
  private runs: Promise<void>[] = [];
  readonly stats: Record<string, AttackStats> = {};

  constructor(private readonly env: SoakEnv) {}

  private stat(name: string): AttackStats {
    return (this.stats[name] ??= { attempts: 0, refusedSeen: 0 });
  }

  private socket(port: number, from: string): Socket {
    const s = connect({ host: '127.0.0.1', port, localAddress: from });
    s.on('error', () => {});
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    return s;
  }

  private get mallory(): string {
    return `Basic ${Buffer.from(`mallory:${this.env.mallory.token}`).toString('base64')}`;
  }

  /** Sleeps unless stopped meanwhile; false once stopped. */
  private async pause(ms: number): Promise<boolean> {
    const until = performance.now() + ms;
    while (!this.stopped && performance.now() < until) await sleep(Math.min(250, until - performance.now()));
    return !this.stopped;
  }

  start(): void {
    const guard = (name: string, f: () => Promise<void>): Promise<void> =>
      f().catch((err: unknown) => {
        process.stderr.write(`soak: attack ${name} stopped: ${err instanceof Error ? err.message : String(err)}\n`);
      });
    this.runs = [
      guard('1 gzip command lists', () => this.gzipCommandLists()),
      guard('2 ssh channels', () => this.sshChannels()),
      guard('3 idle git://', () => this.idleGit()),
      guard('4 wrong passwords', () => this.wrongPasswords()),
      guard('5 slow push', () => this.slowPush()),
      guard('6 idle ssh pre-auth', () => this.idlePreauth()),
    ];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.sockets) s.destroy();
    for (const c of this.clients) c.destroy();
    await Promise.all(this.runs);
  }

  /** Item 1: waves of 12 open POSTs (~180 MiB inflated, past the 128 MiB process budget), held 20 s. */
  private async gzipCommandLists(): Promise<void> {
    const st = this.stat('1 gzip command lists');
    const lines: Buffer[] = [];
    let total = 0;
    for (let i = 0; total < 15 * 1024 * 1024; i++) {
      const line = pkt(`${ZERO} ${NEW_OID} refs/heads/${'x'.repeat(900)}-${i}${i === 0 ? '\0report-status' : ''}\n`);
      lines.push(line);
      total += line.length;
    }
    const body = gzipSync(Buffer.concat(lines), { level: 9, finishFlush: constants.Z_SYNC_FLUSH });
    const port = this.env.githa.httpPort;
    const path = `/${this.env.repos.attack}.git/git-receive-pack`;
    for (let wave = 0; wave < 40 && !this.stopped; wave++) {
      const held: Socket[] = [];
      for (let i = 0; i < 12; i++) {
        const s = this.socket(port, '127.0.0.10');
        st.attempts++;
        let answer = '';
        s.on('data', (c: Buffer) => {
          if (!answer) answer = c.toString('latin1', 0, 12);
          if (/^HTTP\/1\.1 (413|503)/.test(answer)) {
            st.refusedSeen++;
            answer = 'counted';
          }
        });
        const head = [`POST ${path} HTTP/1.1`, `host: 127.0.0.1:${port}`, 'content-type: application/x-git-receive-pack-request', 'content-encoding: gzip', 'content-length: 100000000', `authorization: ${this.mallory}`];
        s.write(`${head.join('\r\n')}\r\n\r\n`);
        s.write(body);
        held.push(s);
      }
      if (!(await this.pause(20_000))) break;
      for (const s of held) s.destroy();
      if (!(await this.pause(2_000))) break;
    }
  }

  /** Item 2: 30 exec channels (maxSessions is 10) on one connection, no want, then gone; every 3 s. */
  private async sshChannels(): Promise<void> {
    const st = this.stat('2 ssh channels');
    const key = readFileSync(this.env.mallory.keyPath);
    const command = `git-upload-pack '${this.env.repos.attack}.git'`;
    for (let round = 0; round < 150 && !this.stopped; round++) {
      const client = new ssh2.Client();
      this.clients.add(client);
      try {
        await new Promise<void>((resolve, reject) => {
          client.once('ready', resolve);
          client.once('error', reject);
          client.connect({ host: '127.0.0.1', port: this.env.githa.sshPort, username: 'git', privateKey: key, readyTimeout: 20_000 });
        });
        const opens = Array.from(
          { length: 30 },
          () =>
            new Promise<void>((resolve) => {
              st.attempts++;
              client.exec(command, (err, channel) => {
                if (err) {
                  st.refusedSeen++;
                  return resolve();
                }
                channel.on('error', () => {});
                channel.stderr.once('data', () => resolve());
                channel.once('data', () => resolve());
                channel.once('close', () => resolve());
              });
            }),
        );
        await Promise.race([Promise.all(opens), sleep(10_000)]);
      } catch {
        // refused or reset: counted by githa
      } finally {
        client.destroy();
        this.clients.delete(client);
      }
      if (!(await this.pause(3_000))) break;
    }
  }

  /** Item 3: keeps 24 git:// connections from one address open after their request line (16 are admitted). */
  private async idleGit(): Promise<void> {
    const st = this.stat('3 idle git://');
    const port = this.env.githa.gitPort!;
    const open = new Set<Socket>();
    while (!this.stopped && st.attempts < 4_000) {
      while (open.size < 24 && st.attempts < 4_000) {
        const s = this.socket(port, '127.0.0.5');
        st.attempts++;
        open.add(s);
        s.once('close', () => open.delete(s));
        s.on('data', (c: Buffer) => {
          if (c.toString('latin1').includes('ERR githa')) st.refusedSeen++;
        });
        s.write(pkt(Buffer.from(`git-upload-pack /${this.env.repos.attack}.git\0host=127.0.0.1\0`, 'utf8')));
      }
      if (!(await this.pause(2_000))) break;
    }
  }

  /** Item 4: 8 clients guessing bob's password, one guess each 250 ms. */
  private async wrongPasswords(): Promise<void> {
    const st = this.stat('4 wrong passwords');
    const path = `/${this.env.repos.attack}.git/info/refs?service=git-upload-pack`;
    const client = async (from: string): Promise<void> => {
      while (!this.stopped && st.attempts < 20_000) {
        st.attempts++;
        const auth = `Basic ${Buffer.from(`bob:guess-${randomBytes(6).toString('hex')}`).toString('base64')}`;
        const status = await new Promise<number>((resolve) => {
          const req = httpRequest({ host: '127.0.0.1', port: this.env.githa.httpPort, localAddress: from, path, agent: false, headers: { connection: 'close', authorization: auth } });
          req.setTimeout(30_000, () => req.destroy());
          req.on('response', (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', () => resolve(0));
          req.end();
        });
        if (status === 401 || status === 429 || status === 503) st.refusedSeen++;
        if (!(await this.pause(250))) break;
      }
    };
    await Promise.all(['127.0.0.6', '127.0.0.7', '127.0.0.8', '127.0.0.9'].flatMap((a) => [client(a), client(a)]));
  }

  /** Item 5: a push whose pack comes one byte a second, again as soon as githa cut the last one. */
  private async slowPush(): Promise<void> {
    const st = this.stat('5 slow push');
    const port = this.env.githa.httpPort;
    const pack = Buffer.concat([Buffer.from('PACK\0\0\0\x02\0\0\0\x01', 'latin1'), Buffer.from([0xb0, 0xa4, 0xe8, 0x03, 0x78, 0x01, 0x00, 0xff, 0xff, 0x00, 0x00])]);
    for (let round = 0; round < 100 && !this.stopped; round++) {
      st.attempts++;
      const s = this.socket(port, '127.0.0.11');
      const chunk = (b: Buffer): void => void s.write(Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]));
      s.write(
        `POST /${this.env.repos.attack}.git/git-receive-pack HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${this.mallory}\r\nContent-Type: application/x-git-receive-pack-request\r\nTransfer-Encoding: chunked\r\n\r\n`,
      );
      chunk(Buffer.concat([pkt(`${ZERO} ${NEW_OID} refs/heads/slow-${round}\0 report-status side-band-64k agent=soak\n`), Buffer.from('0000')]));
      let closed = false;
      s.once('close', () => (closed = true));
      for (let i = 0; !closed && !this.stopped && i < 600; i++) {
        chunk(i < pack.length ? pack.subarray(i, i + 1) : Buffer.from('a'));
        await sleep(1_000);
      }
      if (closed) st.refusedSeen++;
      s.destroy();
      if (!(await this.pause(1_000))) break;
    }
  }

  /** Item 6: up to 50 idle TCP connections to the SSH port from each of two addresses, topped up every 5 s. */
  private async idlePreauth(): Promise<void> {
    const st = this.stat('6 idle ssh pre-auth');
    const open: Record<string, Set<Socket>> = { '127.0.0.2': new Set(), '127.0.0.3': new Set() };
    while (!this.stopped && st.attempts < 15_000) {
      for (const [from, set] of Object.entries(open)) {
        while (set.size < 50 && st.attempts < 15_000) {
          const s = this.socket(this.env.githa.sshPort, from);
          st.attempts++;
          set.add(s);
          s.resume();
          s.once('close', () => {
            set.delete(s);
            if (!this.stopped) st.refusedSeen++;
          });
        }
      }
      if (!(await this.pause(5_000))) break;
    }
  }
}
