import { createServer, type ServerResponse, type Server } from 'node:http';
import type { Cluster } from '../cluster/cluster.js';
import { summarize } from '../cluster/status.js';
import type { Logger } from '../log.js';
import type { LostOverride } from '../state/overrides-file.js';
import type { StateParts } from '../state/state.js';
import type { Metrics } from './metrics.js';
import type { StatusCache } from './status-cache.js';
import { renderMessagePage, renderRepoPage, renderStatusPage, type RepoDetail } from './status-page.js';

export interface AdminDeps {
  metrics?: Metrics;
  /** The shared status snapshot (/status, and the metrics' repository gauges). */
  status?: StatusCache;
  /** For /status/repo/<R>: one repository's state and push log, read live (one repository, never a scan). */
  cluster?: Cluster;
  /** The overrides backendOverridesFile records that Redis lacks (src/state/overrides-file.ts), shown on /status. */
  lostOverrides?: () => LostOverride[];
  log?: Logger;
}

/** The lost overrides, or none when the file cannot be read (the CLI's `githa status` reports that). */
function lostOverridesNow(deps: AdminDeps): LostOverride[] {
  try {
    return deps.lostOverrides?.() ?? [];
  } catch (err) {
    deps.log?.warn({ err: (err as Error).message }, 'cannot read backendOverridesFile');
    return [];
  }
}

/** Entries of the push log shown on a repository's page. */
const LOG_ENTRIES = 20;

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // No script at all; inline styles only.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/**
 * The admin listener: /healthz (the process is alive), /readyz (it can
 * serve: Redis answers), /metrics (Prometheus) and /status (HTML; see
 * docs/observability.md). Load balancers route on /readyz.
 */
export function createAdminServer(state: Pick<StateParts, 'ping' | 'repos' | 'index' | 'pushLog'>, deps: AdminDeps = {}): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      state.ping().then(
        () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n'),
        () => res.writeHead(503, { 'content-type': 'text/plain' }).end('not ready: cluster state (Redis) unavailable\n'),
      );
      return;
    }
    if (path === '/metrics' && deps.metrics) {
      deps.metrics.scrape().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        (err: unknown) => fail(res, err, 'text/plain'),
      );
      return;
    }
    if ((path === '/status' || path === '/status/') && deps.status && deps.cluster) {
      const proxyId = deps.cluster.config.proxyId;
      deps.status.get().then(
        (status) => res.writeHead(200, PAGE_HEADERS).end(renderStatusPage(status, { proxyId, lostOverrides: lostOverridesNow(deps) })),
        (err: unknown) => fail(res, err, 'text/html'),
      );
      return;
    }
    if (path.startsWith('/status/repo/') && deps.cluster) {
      let repo: string;
      try {
        repo = decodeURIComponent(path.slice('/status/repo/'.length));
      } catch {
        res.writeHead(400, PAGE_HEADERS).end(renderMessagePage('Bad request', 'The repository name is not valid URL encoding.'));
        return;
      }
      repoDetail(deps.cluster, state, repo).then(
        (detail) => {
          if (detail) res.writeHead(200, PAGE_HEADERS).end(renderRepoPage(detail));
          else res.writeHead(404, PAGE_HEADERS).end(renderMessagePage('Not found', `githa has no record of ${repo}.`));
        },
        (err: unknown) => fail(res, err, 'text/html'),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });

  function fail(res: ServerResponse, err: unknown, kind: 'text/plain' | 'text/html'): void {
    deps.log?.warn({ err: (err as Error)?.message }, 'admin page failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const message = 'cluster state (Redis) unavailable';
    if (kind === 'text/html') res.writeHead(503, PAGE_HEADERS).end(renderMessagePage('Unavailable', message));
    else res.writeHead(503, { 'content-type': 'text/plain' }).end(`${message}\n`);
  }
}

/** One repository's state and its newest push-log entries; undefined when Redis holds no record of it. */
async function repoDetail(cluster: Cluster, parts: Pick<StateParts, 'repos' | 'index' | 'pushLog'>, repo: string): Promise<RepoDetail | undefined> {
  if (repo.length === 0 || repo.length > 1024) return undefined;
  const { config } = cluster;
  const [state, [lastWrite], log] = await Promise.all([
    parts.repos.read(repo),
    parts.index.lastWrites([repo]),
    parts.pushLog.read(repo, { count: LOG_ENTRIES }),
  ]);
  if (state.versions.size === 0 && !state.frozen && !state.writing && log.length === 0) return undefined;
  const active = cluster.activeBackends().map((b) => b.id);
  const summary = summarize(state, active, config.replication, lastWrite || undefined, Date.now());
  return { repo, state, summary, backends: config.backends.map((b) => b.id), log };
}
