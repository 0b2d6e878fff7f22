import { z } from 'zod';
import { USER_NAME } from '../auth/client-cert.js';
import { DEFAULTS } from './defaults.js';

/** The `tls` section: listen.https's certificate, re-read when its files change, and client certificates (docs/security.md "TLS"). */
export const tlsSchema = z
  .object({
    /** PEM files. */
    cert: z.string().min(1),
    key: z.string().min(1),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default(DEFAULTS.tls.minVersion),
    /** CA certificates (PEM) that client certificates must chain to; only these, never the system's. */
    clientCa: z.string().min(1).optional(),
    clientCertificates: z.enum(['off', 'optional', 'require']).default(DEFAULTS.tls.clientCertificates),
    /** Subject CN → githa user; when set, only listed CNs identify a user (src/auth/client-cert.ts). */
    clientUsers: z.record(z.string().min(1).max(256), z.string().regex(USER_NAME, { message: 'letters, digits, "_ . @ + -", up to 128' })).optional(),
  })
  .strict()
  .refine((t) => t.clientCertificates === 'off' || t.clientCa !== undefined, {
    path: ['clientCa'],
    message: 'tls.clientCertificates optional or require needs tls.clientCa (the CA that signs client certificates)',
  });
