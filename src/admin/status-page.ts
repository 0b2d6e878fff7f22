import type { LostOverride } from '../state/overrides-file.js';
import type { ClusterStatus } from '../cluster/cluster-status.js';
import { driftKind, type RepoHealth, type RepoSummary } from '../cluster/status.js';
import type { RepoState } from '../state/repo-state.js';
import { HEALTH_ORDER, statusHref, type StatusListing, type StatusRow } from './status-listing.js';

/**
 * The admin listener's status pages (docs/observability.md): plain
 * server-rendered HTML, no script, no build step. Every value that comes from
 * Redis or a backend goes through `esc`; the pages are also served with a
 * Content-Security-Policy that allows no script at all.
 */

/** Escapes text for HTML element content and double-quoted attributes. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page of one repository: `/status/repo/<URL-encoded canonical name>`. */
export function repoHref(repo: string): string {
  return `/status/repo/${encodeURIComponent(repo)}`;
}

const STATE_TEXT: Record<RepoHealth, string> = {
  synchronized: 'every active backend is current',
  partial: 'on at least the write quorum, or replicating a recent push',
  unsynchronized: 'newest version on fewer backends than the write quorum',
  ambiguous: 'copies differ; an operator must promote one',
  frozen: 'writes refused until resolved',
};

const CSS = `
:root{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#fff}
body{margin:0 auto;padding:12px;max-width:1200px;line-height:1.4}
h1{font-size:1.35rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
.meta{color:#555;font-size:.85rem}
.wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;border:1px solid #d0d7de;border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em;overflow-wrap:break-word}
time{white-space:nowrap}
a{color:#0550ae}
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:.85em;white-space:nowrap;border:1px solid}
.s-synchronized,.h-up{background:#dafbe1;color:#116329;border-color:#4ac26b}
.s-partial{background:#ddf4ff;color:#0550ae;border-color:#54aeff}
.s-unsynchronized,.h-unknown{background:#fff8c5;color:#7d4e00;border-color:#d4a72c}
.s-ambiguous{background:#fbefff;color:#6e40c9;border-color:#c297ff}
.s-frozen,.h-down{background:#ffebe9;color:#a40e26;border-color:#ff8182}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin:.4rem 0;padding:0;list-style:none}
.counts li{border:1px solid #d0d7de;border-radius:6px;padding:4px 10px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:.4rem 0}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
@media (max-width:600px){body{padding:8px}table{font-size:.8rem}th,td{padding:4px 5px}}
`;

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="10">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

/** A state in colour and in words (never colour alone). */
function badge(state: RepoHealth): string {
  return `<span class="state s-${state}" title="${esc(STATE_TEXT[state])}">${esc(state)}</span>`;
}

function healthBadge(health: string): string {
  const h = health === 'up' || health === 'down' ? health : 'unknown';
  return `<span class="state h-${h}">${esc(h)}</span>`;
}

function list(items: readonly string[]): string {
  return items.length > 0 ? esc([...items].sort().join(', ')) : '–';
}

function yesNo(v: boolean): string {
  return v ? 'yes' : 'no';
}

function time(ms: number | undefined): string {
  if (!ms) return '–';
  return `<time datetime="${esc(new Date(ms).toISOString())}">${esc(new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z'))}</time>`;
}

function table(headers: readonly string[], rows: readonly string[]): string {
  const head = headers.map((h) => `<th scope="col">${esc(h)}</th>`).join('');
  const body = rows.length > 0 ? rows.join('\n') : `<tr><td colspan="${headers.length}">none</td></tr>`;
  return `<div class="wrap"><table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

/** One repository's row (its link, state, version, leaders, stale copies, why it is frozen or drifted). */
function repoRow(r: StatusRow): string {
  return (
    `<tr><td><a href="${esc(repoHref(r.repo))}"><code>${esc(r.repo)}</code></a></td><td>${badge(r.state)}</td><td class="num">${r.version}</td>` +
    `<td>${list(r.leaders)}</td><td>${list(r.stale)}</td><td>${r.reason ? esc(r.reason) : r.drifted.length ? `drifted: ${r.drifted.map((b) => `${esc(b)} (${esc(r.driftKinds?.[b] ?? 'changed')})`).join(', ')}` : '–'}</td></tr>`
  );
}

const REPO_HEADERS = ['repository', 'state', 'version', 'leaders', 'stale', 'frozen reason'] as const;

/** "page N of M" with links to the first, previous, next and last pages. */
function pager(l: StatusListing): string {
  const { page, state } = l.query;
  const link = (p: number, text: string) => `<a href="${esc(statusHref({ page: p, state }))}">${esc(text)}</a>`;
  const parts = [
    page > 1 ? `${link(1, '« first')} · ${link(page - 1, '‹ previous')}` : '',
    `page ${page} of ${l.pages}`,
    page < l.pages ? `${link(page + 1, 'next ›')} · ${link(l.pages, 'last »')}` : '',
  ].filter(Boolean);
  return `<p class="meta pager">${parts.join(' · ')}</p>`;
}

/**
 * `/status`: the counts and every backend from the shared snapshot, then one
 * page of repositories (docs/observability.md "/status"): unfiltered, those
 * needing attention first in a box, then STATUS_PAGE_SIZE repositories most
 * recently written first; `?state=S`, only those in state S, by name.
 */
export function renderStatusPage(status: ClusterStatus, listing: StatusListing, opts: { proxyId: string; now?: number; lostOverrides?: readonly LostOverride[] }): string {
  const counts = HEALTH_ORDER.map((s) => {
    const n = `<strong>${status.counts[s]}</strong>`;
    return `<li>${badge(s)} ${s !== 'synchronized' && status.counts[s] > 0 ? `<a href="${esc(statusHref({ page: 1, state: s }))}">${n}</a>` : n}</li>`;
  }).join('');
  const backendRows = status.backends.map(
    (b) =>
      `<tr><td><code>${esc(b.id)}</code></td><td>${esc(b.zone ?? '–')}</td><td>${yesNo(b.enabled)}</td><td>${yesNo(b.writable)}</td>` +
      `<td>${healthBadge(b.health)}${b.detail && b.health !== 'up' ? ` <span class="meta">${esc(b.detail)}</span>` : ''}</td><td class="num">${b.leads}</td><td class="num">${b.stale}</td></tr>`,
  );
  const { state } = listing.query;
  const attention =
    state || listing.attention.length === 0
      ? ''
      : `<section id="attention"><h2>Needing attention (${listing.attentionTotal})</h2>
${table(REPO_HEADERS, listing.attention.map(repoRow))}
${listing.attentionTotal > listing.attention.length ? `<p class="meta">${listing.attentionTotal - listing.attention.length} more: follow a state's count above</p>` : ''}</section>`;
  const heading = state
    ? `<h2>Repositories ${esc(state)} (${listing.total}) <a class="meta" href="/status">all repositories</a></h2>`
    : `<h2>Repositories (${listing.total}, most recently written first)</h2>`;
  const body = `
<h1>githa cluster status</h1>
<p class="meta">Snapshot ${time(status.at)} by ${esc(opts.proxyId)} · write quorum ${status.writeQuorum} · ${listing.total} repositories${state ? ` ${esc(state)}` : ''} · ${status.backlog} stale copies · refreshes every 10 s</p>
<h2>Repositories by state</h2>
<ul class="counts">${counts}</ul>
<h2>Backends</h2>
${lostOverridesSection(opts.lostOverrides ?? [])}${table(['backend', 'zone', 'enabled', 'writable', 'health', 'leads', 'stale'], backendRows)}
${copiesSection(status)}
${attention}
<section id="repositories">${heading}
${pager(listing)}
${table(REPO_HEADERS, listing.rows.map(repoRow))}
${pager(listing)}</section>
`;
  return layout('githa status', body);
}

/** Overrides Redis lost (backendOverridesFile records them): each backend runs as configured again (docs/operations.md "Redis lost or restored from an old snapshot"). */
function lostOverridesSection(lost: readonly LostOverride[]): string {
  if (lost.length === 0) return '';
  const items = lost.map((l) => {
    const o = l.override;
    const what = [o.enabled !== undefined ? (o.enabled ? 'enabled' : 'disabled') : '', o.writable !== undefined ? (o.writable ? 'taking writes' : 'taking no writes') : ''].filter(Boolean).join(' and ');
    return `<li><code>${esc(l.backend)}</code>: recorded ${esc(what)}${o.by ? ` by ${esc(o.by)}` : ''}, but Redis holds no such override (Redis lost its data?): it runs as configured now; <code>githa status</code> names the commands</li>`;
  });
  return `<p class="meta"><strong>Overrides lost</strong> (backendOverridesFile):</p><ul>${items.join('')}</ul>\n`;
}

/** Missing copies per backend (a new backend's fill progress), untracked repositories, ghosts and leftovers (src/cluster/cluster-status.ts). */
function copiesSection(status: ClusterStatus): string {
  const c = status.copies;
  if (!c) return '';
  const rows = [
    ...Object.entries(c.missing).map(([b, repos]) => `<tr><td>missing on <code>${esc(b)}</code></td><td class="num">${repos.length}</td><td>${list(repos.slice(0, 20))}</td></tr>`),
    `<tr><td>untracked</td><td class="num">${c.untracked.length}</td><td>${list(c.untracked.slice(0, 20))}</td></tr>`,
    `<tr><td>ghosts</td><td class="num">${c.ghosts.length}</td><td>${list(c.ghosts.slice(0, 20))}</td></tr>`,
    `<tr><td>leftovers</td><td class="num">${c.leftovers.length}</td><td>${list(c.leftovers.slice(0, 20))}</td></tr>`,
  ];
  const how =
    c.listed.length > 0
      ? `Listed: ${esc(c.listed.join(', '))}${c.notListable.length ? ` · not listable (no admin): ${esc(c.notListable.join(', '))}` : ''}${c.unlisted.length ? ` · listing failed: ${esc(c.unlisted.map((u) => u.backend).join(', '))}` : ''}`
      : 'No enabled backend has admin: untracked repositories are not looked for; missing copies come from the records only.';
  return `<h2>Copies</h2>\n<p class="meta">${how}</p>\n${table(['what', 'count', 'repositories (first 20)'], rows)}`;
}

export interface RepoDetail {
  repo: string;
  state: RepoState;
  summary: RepoSummary;
  /** Configured backends, in order. */
  backends: readonly string[];
  /** The newest push-log entries, newest first. */
  log: ReadonlyArray<{ id: string; fields: Record<string, string> }>;
}

const LOG_MAIN_FIELDS = ['event', 'version', 'backend', 'user', 'transport'] as const;

/** `/status/repo/<R>`: one repository, per backend, its marker and its push log. */
export function renderRepoPage(d: RepoDetail): string {
  const { state, summary } = d;
  const leaders = new Set(summary.leaders);
  const rows = d.backends.map((b) => {
    const drift = state.drift.get(b);
    const suspect = state.suspect.get(b);
    return (
      `<tr><td><code>${esc(b)}</code></td><td class="num">${state.versions.has(b) ? state.versions.get(b) : '–'}</td>` +
      `<td><code>${esc((state.checksums.get(b) ?? '').slice(0, 12) || '–')}</code></td><td>${yesNo(leaders.has(b))}</td>` +
      `<td>${suspect ? `until ${time(suspect)}` : 'no'}</td><td>${drift ? `${esc(driftKind(drift))}: live <code>${esc(drift.checksum.slice(0, 12))}</code> since ${time(drift.at)}` : 'no'}</td></tr>`
    );
  });
  const w = state.writing;
  const marker = w
    ? `<dl><dt>status</dt><dd>${state.locked ? 'push in flight (lock held)' : '<strong>interrupted</strong> (no lock held)'}</dd>` +
      `<dt>backend</dt><dd><code>${esc(w.backend)}</code></dd><dt>user</dt><dd>${esc(w.user)}</dd><dt>transport</dt><dd>${esc(w.transport)}</dd>` +
      `<dt>githa</dt><dd>${esc(w.proxy)}</dd><dt>started</dt><dd>${time(w.started)}</dd><dt>heartbeat</dt><dd>${time(w.heartbeat)}</dd>` +
      `<dt>pre-write checksum</dt><dd><code>${esc(w.preChecksum.slice(0, 12) || '–')}</code></dd></dl>`
    : '<p>No write in flight.</p>';
  const frozen = state.frozen
    ? `<dl><dt>reason</dt><dd>${esc(state.frozen.reason)}</dd><dt>detail</dt><dd>${esc(state.frozen.detail || '–')}</dd><dt>since</dt><dd>${time(state.frozen.since)}</dd></dl>`
    : '';
  const logRows = d.log.map(({ id, fields }) => {
    const rest = Object.entries(fields)
      .filter(([k]) => !(LOG_MAIN_FIELDS as readonly string[]).includes(k))
      .map(([k, v]) =>
        k === 'refs'
          ? v
              .split('\n')
              .filter(Boolean)
              .map((line) => {
                const [oldOid = '', newOid = '', ref = ''] = line.split(' ');
                return `<div><code>${esc(ref)} ${esc(oldOid.slice(0, 8))}→${esc(newOid.slice(0, 8))}</code></div>`;
              })
              .join('')
          : `<div>${esc(k)}=<code>${esc(v)}</code></div>`,
      )
      .join('');
    return (
      `<tr><td>${time(Number(id.split('-')[0]))}</td>` +
      LOG_MAIN_FIELDS.map((k) => `<td>${k === 'backend' && fields[k] ? `<code>${esc(fields[k])}</code>` : esc(fields[k] ?? '–')}</td>`).join('') +
      `<td>${rest || '–'}</td></tr>`
    );
  });
  const body = `
<p><a href="/status">← all repositories</a></p>
<h1><code>${esc(d.repo)}</code> ${badge(summary.state)}</h1>
<p class="meta">version ${summary.version} · leaders ${list(summary.leaders)} · stale ${list(summary.stale)} · refreshes every 10 s</p>
${state.frozen || summary.reason ? `<h2>Frozen</h2>${frozen || `<p>${esc(summary.reason)}</p>`}` : ''}
<h2>Backends</h2>
${table(['backend', 'version', 'checksum', 'leader', 'suspect', 'drift'], rows)}
<h2>Write marker</h2>
${marker}
<h2>Push log (last ${d.log.length})</h2>
${table(['time', 'event', 'version', 'backend', 'user', 'transport', 'details'], logRows)}
`;
  return layout(`${d.repo} · githa status`, body);
}

/** A short page for 404 / 503 answers. */
export function renderMessagePage(title: string, message: string): string {
  return layout(title, `<p><a href="/status">← all repositories</a></p><h1>${esc(title)}</h1><p>${esc(message)}</p>`);
}
