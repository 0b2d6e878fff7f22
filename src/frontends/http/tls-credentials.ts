import type { SecureContextOptions } from 'node:tls';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../../errors.js';
import { WatchedFile } from '../../config/watched-file.js';
import type { Config } from '../../config/schema.js';

export type TlsConfig = NonNullable<Config['tls']>;

/**
 * TLS 1.2 suites: ECDHE or DHE key exchange (forward secrecy) with AEAD
 * ciphers only — no CBC, no RSA key exchange, no SHA-1 MACs (Mozilla's
 * "intermediate" list). TLS 1.3's suites (all AEAD) are OpenSSL's defaults,
 * named here so this one string is the whole list.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * The secure-context options of listen.https, from tls.cert, tls.key and
 * tls.clientCa, each a WatchedFile (src/config/watched-file.ts): one stat
 * per file and connection, so a renewed certificate (certbot's rename into
 * place, a copy over the old file) is served from the next connection on,
 * without a restart.
 *
 * A new set is used only once it loads as a whole (a key that matches the
 * certificate, PEM that parses): until then the last good one stays, and the
 * problem is reported once per change. githa never serves without TLS or
 * with half a pair. At start, a set that does not load is a ConfigError.
 */
export class TlsCredentials {
  private readonly files: { cert: WatchedFile<string>; key: WatchedFile<string>; ca?: WatchedFile<string> };
  private changed = false;
  private current: SecureContextOptions;

  constructor(
    private readonly config: TlsConfig,
    private readonly onProblem: (message: string) => void,
  ) {
    const startProblems: string[] = [];
    const watch = (path: string): WatchedFile<string> =>
      new WatchedFile(path, (text) => ({ value: text, problems: [] }), '', (message) => (this.files ? onProblem(message) : startProblems.push(message)), () => (this.changed = true));
    const clientCa = config.clientCertificates !== 'off' ? config.clientCa : undefined;
    this.files = { cert: watch(config.cert), key: watch(config.key), ...(clientCa ? { ca: watch(clientCa) } : {}) };
    if (startProblems.length > 0) throw new ConfigError(`tls: ${startProblems.join('; ')}`);
    try {
      this.current = this.load();
    } catch (err) {
      throw new ConfigError(`tls: cannot use ${config.cert} with ${config.key}${clientCa ? ` and ${clientCa}` : ''}: ${(err as Error).message}`);
    }
    this.changed = false;
  }

  /** The options in use (the last set that loaded). */
  options(): SecureContextOptions {
    return this.current;
  }

  /** New options when a file changed since the last call and the new set loads; undefined otherwise. */
  refresh(): SecureContextOptions | undefined {
    this.files.cert.get();
    this.files.key.get();
    this.files.ca?.get();
    if (!this.changed) return undefined;
    this.changed = false;
    try {
      this.current = this.load();
      return this.current;
    } catch (err) {
      this.onProblem(`cannot use ${this.config.cert} with ${this.config.key}: ${(err as Error).message}; still serving the previous certificate`);
      return undefined;
    }
  }

  /** The options of the files as they are now; throws when they do not make a working context. */
  private load(): SecureContextOptions {
    const cert = this.files.cert.get();
    const key = this.files.key.get();
    const ca = this.files.ca?.get();
    if (!cert || !key || ca === '') throw new Error('a file is missing or empty');
    const options: SecureContextOptions = {
      cert,
      key,
      ...(ca !== undefined ? { ca } : {}),
      minVersion: this.config.minVersion,
      ciphers: TLS_CIPHERS,
      honorCipherOrder: true,
    };
    // Throws on a key that does not match the certificate, or PEM that does not parse.
    createSecureContext(options);
    return options;
  }
}
