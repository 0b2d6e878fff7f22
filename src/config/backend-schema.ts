import { z } from 'zod';
import { DEFAULTS } from './defaults.js';

/** One backend of `backends` (docs/config.md "Backends"). */
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), { message: 'expected an http:// or https:// URL' })
  // <base>/<repo>/info/refs is the smart endpoint: normalise to a trailing slash.
  .transform((u) => (u.endsWith('/') ? u : `${u}/`));

const backendId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, { message: 'letters, digits, "_", "." and "-", up to 63' });

export const backendSchema = z
  .object({
    id: backendId,
    http: httpUrl.optional(),
    ssh: z.string().optional(),
    git: z.string().optional(),
    zone: z.string().min(1).optional(),
    enabled: z.boolean().default(DEFAULTS.backendDefaults.enabled),
    writable: z.boolean().default(DEFAULTS.backendDefaults.writable),
    /** Service credentials githa uses for its own requests (catch-up, checksums). */
    httpAuth: z.object({ username: z.string(), password: z.string() }).strict().optional(),
    /**
     * githa may create, list, trash and rename repositories here (docs/operations.md "Repository lifecycle"):
     * `true` uses the `ssh` URL's account and root; a string names another account `ssh://user@host[:port]/root`.
     */
    admin: z.union([z.literal(true), z.string().regex(/^ssh:\/\/[^\s]+$/, { message: 'expected true or "ssh://user@host[:port]/root"' })]).optional(),
  })
  .strict()
  .refine((b) => b.http || b.ssh || b.git, { message: 'a backend needs at least one endpoint (http, ssh or git)' })
  .refine((b) => b.admin !== true || b.ssh !== undefined, { path: ['admin'], message: 'admin: true uses the backend\'s ssh URL: set ssh, or name the admin account ("ssh://user@host/root")' });

