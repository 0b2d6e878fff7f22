import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fmtMs, fmtRatio, markdownTable, median, pairedRatio, percentile, spread } from '../../tools/bench/stats.js';
import { parseCpu, parseStatusKb, statFields } from '../../tools/bench/procstat.js';
import { RespCommandDecoder, describeTurn, turnsFor } from '../../tools/bench/redis-counter.js';
import { fetchRequest } from '../../tools/bench/concurrent.js';

describe('bench statistics', () => {
  it('median of odd and even counts, NaN when empty', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile([7, 3], 99)).toBe(7); // few samples: p99 is the maximum
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });

  it('a percentile is a sample, between min and max, monotone in p', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 50 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), (xs, p, q) => {
        const v = percentile(xs, p);
        expect(xs).toContain(v);
        const { min, max } = spread(xs);
        expect(v).toBeGreaterThanOrEqual(min);
        expect(v).toBeLessThanOrEqual(max);
        if (p <= q) expect(percentile(xs, p)).toBeLessThanOrEqual(percentile(xs, q));
      }),
    );
  });

  it('paired ratio: ratio of the medians, spread of the per-pair ratios', () => {
    const r = pairedRatio([1, 2, 4], [1.1, 2, 6]);
    expect(r.baseline).toBe(2);
    expect(r.subject).toBe(2);
    expect(r.ratio).toBe(1);
    expect(r.spread.min).toBe(1);
    expect(r.spread.max).toBe(1.5);
    expect(fmtRatio(r)).toBe('1.00 (1.00–1.50)');
    expect(() => pairedRatio([1], [1, 2])).toThrow(RangeError);
  });

  it('formats milliseconds and renders a Markdown table with escaped cells', () => {
    expect(fmtMs(1.234)).toBe('1.23 ms');
    expect(fmtMs(123.45)).toBe('123.5 ms');
    expect(fmtMs(2500)).toBe('2.50 s');
    expect(fmtMs(NaN)).toBe('n/a');
    const table = markdownTable([
      { figure: 'F1', measured: 'a | b', result: '1.01 ×', goal: '≤ 1.05', met: true },
      { figure: 'F4', measured: 'x', result: '0.5 ×', goal: '≥ 0.8', met: false },
      { figure: 'F5', measured: 'failed', result: 'FAILED', goal: '', met: undefined },
    ]);
    expect(table.split('\n')).toEqual([
      '| figure | measured | result | goal | met |',
      '|---|---|---|---|---|',
      '| F1 | a \\| b | 1.01 × | ≤ 1.05 | yes |',
      '| F4 | x | 0.5 × | ≥ 0.8 | NO |',
      '| F5 | failed | FAILED |  | ? |',
    ]);
  });
});

describe('bench /proc parsing', () => {
  it('reads CPU ticks after a command name holding spaces and parentheses', () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
    const stat = '42 (node (x) y) S 1 42 42 0 -1 4194560 10 0 0 0 250 50 1000 200 20 0 11 0 100 0';
    expect(statFields(stat)[0]).toBe('S');
    expect(parseCpu(stat)).toEqual({ self: 3, children: 12 });
  });

  it('reads kB fields of /proc/PID/status as bytes', () => {
    const status = 'Name:\tnode\nVmPeak:\t  900 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 100 kB\n';
    expect(parseStatusKb(status, 'VmHWM')).toBe(123456 * 1024);
    expect(parseStatusKb(status, 'VmSwap')).toBeNaN();
  });
});

describe('bench Redis round-trip counter', () => {
  const resp = (...argv: string[]): Buffer => Buffer.from(`*${argv.length}\r\n${argv.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);

  it('decodes pipelined RESP commands split at any byte', () => {
    const stream = Buffer.concat([resp('HGETALL', 'githa:repo:{a.git}:versions'), resp('EXISTS', 'githa:lock:{a.git}'), resp('PING')]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 6 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const d = new RespCommandDecoder();
        const out: string[][] = [];
        let last = 0;
        for (const p of [...points, stream.length]) {
          out.push(...d.push(stream.subarray(last, p)));
          last = p;
        }
        expect(out).toEqual([['HGETALL', 'githa:repo:{a.git}:versions'], ['EXISTS', 'githa:lock:{a.git}'], ['PING']]);
      }),
    );
  });

  it('keeps the first arguments only, decodes inline commands, rejects garbage', () => {
    const d = new RespCommandDecoder();
    expect(d.push(resp('EVALSHA', 'abc', '2', 'k1', 'k2', 'arg'))).toEqual([['EVALSHA', 'abc', '2', 'k1']]);
    expect(d.push(Buffer.from('PING\r\n'))).toEqual([['PING']]);
    expect(() => new RespCommandDecoder().push(Buffer.from('*1\r\n:5\r\n'))).toThrow(/bulk string/);
  });

  it('attributes turns to a repository by its hash tag and labels them', () => {
    const turns = [
      { conn: 1, at: 0, commands: [['HGETALL', 'githa:repo:{a.git}:versions'], ['HGETALL', 'githa:repo:{a.git}:checksums'], ['EXISTS', 'githa:lock:{a.git}']] },
      { conn: 2, at: 1, commands: [['XREAD', 'BLOCK', '2000', 'STREAMS']] },
      { conn: 1, at: 2, commands: [['HGETALL', 'githa:repo:{ab.git}:versions']] },
    ];
    expect(turnsFor(turns, 'a.git')).toEqual([turns[0]]);
    expect(describeTurn(turns[0]!)).toBe('HGETALL×2 + EXISTS');
  });
});

describe('bench raw v2 fetch request', () => {
  it('is pkt-lines: command, delimiter, arguments, flush', () => {
    const body = fetchRequest(['a'.repeat(40)]).toString('latin1');
    expect(body.startsWith('0012command=fetch\n')).toBe(true);
    expect(body).toContain('0001');
    expect(body).toContain(`0032want ${'a'.repeat(40)}\n`);
    expect(body.endsWith('0009done\n0000')).toBe(true);
  });
});
