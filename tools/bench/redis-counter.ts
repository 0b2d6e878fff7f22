/**
 * Counts Redis round trips: a TCP relay between githa and redis-server that
 * records, per connection, each *turn*: the client sends one or more
 * commands, then waits for the answer. A pipeline (or a MULTI … EXEC, or a
 * Lua script) is one turn however many commands it holds; two commands
 * written back to back before any answer are one turn too (they cost one
 * network latency together). The commands are decoded (RESP arrays of bulk
 * strings, https://redis.io/docs/latest/develop/reference/protocol-spec/) so
 * that a turn can be attributed to a repository by its hash tag `{repo}`.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** Arguments kept per command (enough to see the command and its keys). */
const KEPT_ARGS = 4;
const KEPT_ARG_CHARS = 120;

/**
 * Incremental decoder of the commands a client sends: RESP arrays of bulk
 * strings, or inline commands (a line of words). Keeps only the first
 * KEPT_ARGS arguments of each command, shortened.
 */
export class RespCommandDecoder {
  private buf: Buffer = Buffer.alloc(0);

  /** Feeds bytes; returns the commands completed by them. Throws on a malformed stream. */
  push(chunk: Buffer): string[][] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: string[][] = [];
    for (;;) {
      const parsed = this.parseOne();
      if (!parsed) break;
      out.push(parsed.argv);
      this.buf = this.buf.subarray(parsed.end);
    }
    return out;
  }

  private parseOne(): { argv: string[]; end: number } | undefined {
    const b = this.buf;
    if (b.length === 0) return undefined;
    const lineEnd = (from: number): number => {
      const i = b.indexOf('\r\n', from);
      return i;
    };
    if (b[0] !== 0x2a /* '*' */) {
      const e = lineEnd(0);
      if (e < 0) return undefined;
      const argv = b.subarray(0, e).toString('utf8').trim().split(/\s+/).filter(Boolean);
      return { argv: argv.slice(0, KEPT_ARGS).map(short), end: e + 2 };
    }
    let e = lineEnd(0);
    if (e < 0) return undefined;
    const count = Number(b.subarray(1, e).toString('latin1'));
    if (!Number.isInteger(count) || count < 0) throw new Error(`malformed RESP array header ${JSON.stringify(b.subarray(0, e).toString('latin1'))}`);
    let pos = e + 2;
    const argv: string[] = [];
    for (let i = 0; i < count; i++) {
      if (pos >= b.length) return undefined;
      if (b[pos] !== 0x24 /* '$' */) throw new Error(`malformed RESP: expected a bulk string at ${pos}`);
      e = lineEnd(pos);
      if (e < 0) return undefined;
      const len = Number(b.subarray(pos + 1, e).toString('latin1'));
      if (!Number.isInteger(len) || len < 0) throw new Error('malformed RESP bulk length');
      const start = e + 2;
      if (b.length < start + len + 2) return undefined;
      if (argv.length < KEPT_ARGS) argv.push(short(b.subarray(start, start + len).toString('utf8')));
      pos = start + len + 2;
    }
    return { argv, end: pos };
  }
}

function short(s: string): string {
  return s.length > KEPT_ARG_CHARS ? `${s.slice(0, KEPT_ARG_CHARS)}…` : s;
}

export interface Turn {
  /** Connection number (githa opens several: requests, events, subscriber). */
  conn: number;
  /** performance.now() when the turn's first bytes arrived. */
  at: number;
  commands: string[][];
}

/** Turns that touch a repository's keys (its hash tag `{repo}` appears in an argument). */
export function turnsFor(turns: readonly Turn[], repo: string): Turn[] {
  const tag = `{${repo}}`;
  return turns.filter((t) => t.commands.some((argv) => argv.some((a) => a.includes(tag))));
}

/** "EVALSHA 3f2a… 4 githa:repo:{r}:versions" → "EVALSHA", "HGETALL" …: a short label of a turn. */
export function describeTurn(t: Turn): string {
  const names = t.commands.map((argv) => (argv[0] ?? '?').toUpperCase());
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([n, c]) => (c > 1 ? `${n}×${c}` : n)).join(' + ');
}

export class RedisRoundTripCounter {
  readonly turns: Turn[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private conns = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  /** Listens on 127.0.0.1 (port 0); resolves with the port. */
  async start(): Promise<number> {
    this.server = createServer((client) => this.relay(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve());
    });
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    return address.port;
  }

  /** Index to pass to since(). */
  mark(): number {
    return this.turns.length;
  }

  since(mark: number): Turn[] {
    return this.turns.slice(mark);
  }

  private relay(client: Socket): void {
    const conn = ++this.conns;
    const upstream = connect(this.target);
    this.sockets.add(client);
    this.sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const decoder = new RespCommandDecoder();
    let current: Turn | undefined;
    client.on('data', (chunk: Buffer) => {
      if (!current) {
        current = { conn, at: performance.now(), commands: [] };
        this.turns.push(current);
      }
      try {
        current.commands.push(...decoder.push(chunk));
      } catch {
        // Not ours to judge: relay the bytes and let Redis answer.
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      // An answer ends the turn: the client's next bytes are a new round trip.
      current = undefined;
      client.write(chunk);
    });
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
