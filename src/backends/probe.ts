/**
 * Cheap liveness checks of a backend's stateful endpoints, for the health
 * checker (docs/architecture.md "Health"; docs/config.md `health.*`).
 *
 * Each probe is a fresh TCP connection, never a pooled one: a killed sshd
 * master leaves the pooled ssh2 sessions (children of the dead master) alive,
 * so only a new connection tells whether the server still accepts clients.
 */
import { connect } from 'node:net';
import { BackendUnavailableError } from '../errors.js';

export interface TcpGreetingOptions {
  /** The backend's id, named in the error. */
  backendId: string;
  /** What is probed, for the error message ("SSH", "git://"). */
  what: string;
  /**
   * A line the server must send first (e.g. /^SSH-2\.0-/). Without it, a
   * completed TCP connect is enough (git daemon says nothing before the request).
   */
  expect?: RegExp | undefined;
  /** The probe fails after this long. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/**
 * RFC 4253 4.2: a server may send other lines before its identification
 * string, and the identification line is at most 255 characters. githa reads
 * this much at most before it gives up.
 */
const MAX_GREETING_BYTES = 8 * 1024;

/**
 * Connects to host:port, waits for a line matching `expect` (when given),
 * then closes the connection. Resolves with that line ('' without `expect`);
 * rejects with BackendUnavailableError (bytesSent=false) on refusal, timeout,
 * abort, an early close or an unexpected greeting.
 */
export function tcpGreeting(host: string, port: number, opts: TcpGreetingOptions): Promise<string> {
  const { backendId, what, expect, timeoutMs, signal } = opts;
  const unavailable = (reason: string, cause?: unknown): BackendUnavailableError =>
    new BackendUnavailableError(`backend ${backendId}: ${what} probe failed: ${reason}`, backendId, { cause });
  if (signal?.aborted) return Promise.reject(unavailable('aborted', signal.reason));
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buffered = '';
    let settled = false;
    const finish = (err: Error | undefined, line = ''): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // destroy(), not end(): nothing is sent, and no half-open socket lingers.
      socket.destroy();
      if (err) reject(err);
      else resolve(line);
    };
    const timer = setTimeout(() => finish(unavailable(`no ${expect ? 'greeting' : 'connection'} within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    const onAbort = (): void => {
      const reason = signal?.reason as { name?: string } | undefined;
      finish(unavailable(reason?.name === 'TimeoutError' ? 'timed out' : 'aborted', signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => finish(unavailable(err.message, err)));
    socket.once('close', () => finish(unavailable('the connection closed before a greeting')));
    socket.once('connect', () => {
      if (!expect) finish(undefined);
    });
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      if (!expect) return;
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        if (expect.test(line)) return finish(undefined, line);
        // RFC 4253 4.2: lines before the identification must not start with "SSH-".
        if (line.startsWith('SSH-')) return finish(unavailable(`unexpected greeting ${JSON.stringify(line.slice(0, 64))}`));
      }
      if (buffered.length > MAX_GREETING_BYTES) finish(unavailable(`no greeting in the first ${MAX_GREETING_BYTES} bytes`));
    });
  });
}
