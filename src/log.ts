import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * githa's logger: pino JSON lines on stderr (stdout belongs to the CLI's
 * output). Request handlers use child loggers that carry a request id.
 * Secrets never reach a log line: githa logs user names, never credentials.
 */
export function createLogger(level: string, destination: NodeJS.WritableStream | number = 2): Logger {
  return pino(
    {
      level,
      base: { svc: 'githa' },
      redact: { paths: ['authorization', '*.authorization', 'cookie', '*.cookie', 'password', '*.password'], censor: '[redacted]' },
    },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: false }) : destination,
  );
}
