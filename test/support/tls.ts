/**
 * A test CA and certificates made with the `openssl` CLI (harness side):
 * EC P-256 keys, a CA that signs server certificates for 127.0.0.1/localhost
 * and client certificates with a given CN.
 *
 *   const ca = await TestCa.create(dir);
 *   const server = await ca.issue('server', { cn: 'localhost', server: true });
 *   const alice = await ca.issue('alice', { cn: 'alice' });
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface IssuedCert {
  /** PEM certificate (only the leaf) and its key. */
  readonly cert: string;
  readonly key: string;
  /** cert + key in one file (HAProxy's `crt`). */
  readonly bundle: string;
  readonly serial: string;
}

function openssl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`openssl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

let serials = 0x1000;

export class TestCa {
  private constructor(
    readonly dir: string,
    readonly name: string,
    /** The CA certificate (what git's http.sslCAInfo and tls.clientCa point at). */
    readonly cert: string,
    private readonly key: string,
  ) {}

  static async create(dir: string, name = 'ca'): Promise<TestCa> {
    const cert = join(dir, `${name}.crt`);
    const key = join(dir, `${name}.key`);
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=githa test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    return new TestCa(dir, name, cert, key);
  }

  /** A certificate signed by this CA: a server's for 127.0.0.1 and localhost, or a client's. */
  async issue(name: string, options: { cn: string; server?: boolean }): Promise<IssuedCert> {
    const base = join(this.dir, `${this.name}-${name}`);
    const serial = (++serials).toString(16);
    await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${options.cn}`]);
    writeFileSync(
      `${base}.ext`,
      options.server
        ? 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n'
        : 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n',
    );
    await openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', this.cert, '-CAkey', this.key, '-set_serial', `0x${serial}`, '-days', '2', '-out', `${base}.crt`, '-extfile', `${base}.ext`]);
    writeFileSync(`${base}.pem`, readFileSync(`${base}.crt`, 'utf8') + readFileSync(`${base}.key`, 'utf8'));
    return { cert: `${base}.crt`, key: `${base}.key`, bundle: `${base}.pem`, serial: serial.toUpperCase() };
  }
}
