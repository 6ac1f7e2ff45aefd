// The status page: one self-contained HTML document (no build step, no
// framework) that reads /targets and /status and draws them. It lives in a string so that
// `tsc` ships it in dist/ with the rest. Every value from discovery (labels,
// tags, container names) reaches the DOM through textContent, never as HTML.

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --err: #cf222e; --wait: #9a6700; --line: #d0d7de; --muted: #57606a; --bg2: #f6f8fa; }
@media (prefers-color-scheme: dark) { :root { --line: #30363d; --muted: #8b949e; --bg2: #161b22; } }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 1400px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1.5rem; border-bottom: 1px solid var(--line); padding-bottom: .5rem; }
header h1 { font-size: 1.3rem; margin: 0; }
#summary { color: var(--muted); }
#controls { margin-left: auto; display: flex; gap: 1rem; align-items: center; }
#filter { padding: .25rem .5rem; min-width: 16rem; }
section.service { margin-top: 1.5rem; }
section.service h2 { font-size: 1.1rem; margin: 0 0 .4rem; }
section.service h2 .count { font-weight: normal; color: var(--muted); font-size: .9rem; margin-left: .5rem; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
col.c-target { width: 28%; } col.c-types { width: 42%; } col.c-errors { width: 30%; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
th { background: var(--bg2); font-weight: 600; }
.addr { font-family: ui-monospace, monospace; }
.labels { color: var(--muted); font-size: .8rem; word-break: break-all; }
.types { display: flex; flex-wrap: wrap; gap: .3rem; }
.type { border: 1px solid var(--line); border-left: 4px solid var(--wait); border-radius: 4px; padding: .1rem .4rem; font-size: .85rem; white-space: nowrap; }
.type.ok { border-left-color: var(--ok); }
.type.error { border-left-color: var(--err); }
.type .state { font-weight: 600; }
.type.ok .state { color: var(--ok); }
.type.error .state { color: var(--err); }
.type.pending .state { color: var(--wait); }
.type a { margin-left: .3rem; }
.meta { color: var(--muted); }
.error-text { color: var(--err); font-family: ui-monospace, monospace; font-size: .8rem; white-space: pre-wrap; word-break: break-word; }
.problems { border: 1px solid var(--err); border-radius: 6px; padding: .5rem 1rem; margin-top: 1rem; }
.problems h2 { color: var(--err); font-size: 1rem; margin: .2rem 0; }
details { margin-top: 1.5rem; }
.empty { color: var(--muted); margin-top: 2rem; }
#repositories { margin-top: 1rem; }
#repositories h2, #health h2 { font-size: 1.1rem; margin: 0 0 .4rem; }
#repositories tr.down td:first-child { border-left: 4px solid var(--err); }
#repositories tr.up td:first-child { border-left: 4px solid var(--ok); }
#health { border: 1px solid var(--err); border-radius: 6px; padding: .5rem 1rem; margin-top: 1rem; }
#health h2 { color: var(--err); }
#about { color: var(--muted); font-size: .85rem; width: 100%; }
footer { margin-top: 2rem; color: var(--muted); font-size: .85rem; }
footer a { margin-right: 1rem; }
`;

const SCRIPT = `
'use strict';
const $ = (sel) => document.querySelector(sel);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
  return node;
}
function size(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1024 / 1024).toFixed(1) + ' MiB';
}
function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return s + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  return Math.floor(s / 3600) + 'h ago';
}
function health(last) {
  if (!last) return 'pending';
  return last.result === 'success' ? 'ok' : 'error';
}
function typeBadge(type, last) {
  const state = health(last);
  const badge = el('span', { class: 'type ' + state, 'data-type': type, 'data-health': state },
    el('span', { class: 'state' }, type + ' ' + (state === 'ok' ? '✓' : state === 'error' ? '✗' : '…')));
  if (last) {
    badge.title = last.result + ' at ' + last.time + ', ' + last.durationMs + ' ms, ' + size(last.bytes) + (last.error ? '\\n' + last.error : '');
    badge.append(' ', el('span', { class: 'meta' }, ago(last.time) + ' · ' + last.durationMs + ' ms · ' + size(last.bytes)));
  } else {
    badge.title = 'not scraped yet';
  }
  if (last && last.profile) {
    const what = type === 'trace' ? 'Go execution trace (go tool trace opens it)' : type + ' profile (pprof, gzipped)';
    badge.append(el('a', { href: last.profile, download: '', title: 'download the last ' + what }, 'download'));
  }
  return badge;
}
function failing(t) {
  return t.profiles.some((p) => health(t.last && t.last[p.type]) === 'error');
}
function matches(t, q) {
  if ($('#failing').checked && !failing(t)) return false;
  if (!q) return true;
  const hay = [t.service, t.address, t.provider, ...Object.entries(t.labels).map(([k, v]) => k + '=' + v)].join(' ').toLowerCase();
  return q.toLowerCase().split(/\\s+/).every((w) => hay.includes(w));
}
let data;
let status;
function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60 ? ' ' + (s % 60) + 's' : '');
  return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
}
function renderStatus() {
  if (!status) return;
  $('#about').textContent = 'pprof-scraper ' + status.version + ' · Node ' + status.node + ' · config: ' + status.config.source
    + (status.config.applied ? ' (applied ' + ago(status.config.applied) + ')' : '') + ' · up since ' + new Date(status.started).toLocaleString();
  const box = $('#status-panels');
  box.replaceChildren();
  if (!status.health.healthy) {
    const h = el('div', { id: 'health' }, el('h2', {}, 'Unhealthy (/-/healthy answers 503)'));
    for (const r of status.health.reasons) h.append(el('div', { class: 'error-text' }, r));
    box.append(h);
  }
  const table = el('table', {}, el('thead', {}, el('tr', {},
    el('th', {}, 'Repository'), el('th', {}, 'Queued'), el('th', {}, 'Oldest'), el('th', {}, 'Last success'), el('th', {}, 'Last error'), el('th', {}, 'Retry'))));
  const body = el('tbody');
  for (const r of status.repositories) {
    const down = r.failedAttempts > 0 || r.stalled;
    const retry = r.retryAt ? 'in ' + duration(Math.max(0, Date.parse(r.retryAt) - Date.now())) : (r.failedAttempts > 0 ? 'now' : '—');
    body.append(el('tr', { class: down ? 'down' : 'up', 'data-repository': r.name, 'data-health': down ? 'down' : 'up' },
      el('td', {}, el('div', { class: 'addr' }, r.name), el('div', { class: 'labels' }, r.kind + (r.stalled ? ' · stalled' : down ? ' · failing' : ''))),
      el('td', { class: 'queued' }, r.queued + ' · ' + size(r.queuedBytes)),
      el('td', {}, r.queued > 0 ? duration(r.oldestAgeMs) : '—'),
      el('td', {}, r.lastSuccess ? ago(r.lastSuccess) : 'none yet'),
      el('td', { class: 'last-error' }, r.lastError ? el('div', { class: 'error-text' }, ago(r.lastError.time) + ': ' + r.lastError.error + (r.lastError.permanent ? ' (refused for good)' : '')) : '—'),
      el('td', { class: 'retry' }, retry + (r.failedAttempts > 0 ? ' · ' + r.failedAttempts + ' failed attempts' : ''))));
  }
  table.append(body);
  box.append(el('section', { id: 'repositories' }, el('h2', {}, 'Repositories'), table));
}
function render() {
  renderStatus();
  if (!data) return;
  const q = $('#filter').value.trim();
  const main = $('#main');
  main.replaceChildren();
  let ok = 0, bad = 0, pending = 0;
  for (const t of data.targets) for (const p of t.profiles) {
    const h = health(t.last && t.last[p.type]);
    if (h === 'ok') ok++; else if (h === 'error') bad++; else pending++;
  }
  const services = new Map();
  for (const t of data.targets) {
    if (!matches(t, q)) continue;
    if (!services.has(t.service)) services.set(t.service, []);
    services.get(t.service).push(t);
  }
  $('#summary').textContent = data.targets.length + ' targets in ' + new Set(data.targets.map((t) => t.service)).size + ' services · '
    + ok + ' profile types healthy, ' + bad + ' failing, ' + pending + ' not scraped yet · ' + data.dropped.length + ' dropped';
  if (data.errors.length > 0) {
    const box = el('div', { class: 'problems', id: 'discovery-errors' }, el('h2', {}, 'Discovery errors (the last good targets stay)'));
    for (const e of data.errors) box.append(el('div', { class: 'error-text' }, e.source + ' (' + e.provider + '): ' + e.error));
    main.append(box);
  }
  if (services.size === 0) main.append(el('p', { class: 'empty' }, data.targets.length === 0 ? 'No targets yet: discovery found none, or has not answered.' : 'No target matches the filter.'));
  for (const name of [...services.keys()].sort()) {
    const targets = services.get(name).sort((a, b) => a.address.localeCompare(b.address));
    const section = el('section', { class: 'service', 'data-service': name },
      el('h2', {}, name, el('span', { class: 'count' }, targets.length + (targets.length === 1 ? ' target' : ' targets'))));
    const cols = el('colgroup', {}, el('col', { class: 'c-target' }), el('col', { class: 'c-types' }), el('col', { class: 'c-errors' }));
    const table = el('table', {}, cols, el('thead', {}, el('tr', {}, el('th', {}, 'Target'), el('th', {}, 'Profiles'), el('th', {}, 'Last error'))));
    const body = el('tbody');
    for (const t of targets) {
      const labels = Object.entries(t.labels).filter(([k]) => k !== 'instance' && k !== 'provider').map(([k, v]) => k + '=' + v).join(' ');
      const types = el('div', { class: 'types' });
      const errors = el('td', { class: 'errors' });
      for (const p of t.profiles) {
        const last = t.last && t.last[p.type];
        types.append(typeBadge(p.type, last));
        if (last && last.error) errors.append(el('div', { class: 'error-text' }, p.type + ': ' + last.error));
      }
      body.append(el('tr', { 'data-target': t.id },
        el('td', {}, el('div', { class: 'addr' }, t.scheme + '://' + t.address), el('div', { class: 'labels' }, t.provider + ' · every ' + (t.interval || t.schedule) + (labels ? ' · ' + labels : ''))),
        el('td', {}, types),
        errors));
    }
    table.append(body);
    section.append(table);
    main.append(section);
  }
  if (data.dropped.length > 0) {
    const list = el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Provider'), el('th', {}, 'Address'), el('th', {}, 'Reason'))));
    const body = el('tbody');
    for (const d of data.dropped) body.append(el('tr', {}, el('td', {}, d.provider), el('td', { class: 'addr' }, d.address || '—'), el('td', {}, d.reason)));
    list.append(body);
    main.append(el('details', { id: 'dropped' }, el('summary', {}, data.dropped.length + ' dropped targets'), list));
  }
}
async function refresh() {
  try {
    const [res, st] = await Promise.all([fetch('targets', { cache: 'no-store' }), fetch('status', { cache: 'no-store' })]);
    if (!res.ok) throw new Error('GET /targets answered ' + res.status);
    if (!st.ok) throw new Error('GET /status answered ' + st.status);
    data = await res.json();
    status = await st.json();
    $('#updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    $('#updated').classList.remove('error-text');
    render();
  } catch (err) {
    $('#updated').textContent = 'could not load the status: ' + err.message;
    $('#updated').classList.add('error-text');
  }
}
$('#filter').addEventListener('input', render);
$('#failing').addEventListener('change', render);
refresh();
setInterval(() => { if ($('#auto').checked) refresh(); }, 5000);
`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pprof-scraper</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>pprof-scraper</h1>
  <span id="summary">loading…</span>
  <span id="controls">
    <input id="filter" type="search" placeholder="filter: service, address, label=value" aria-label="filter targets">
    <label><input id="failing" type="checkbox"> failing only</label>
    <label><input id="auto" type="checkbox" checked> auto-refresh</label>
    <span id="updated" class="meta"></span>
  </span>
  <span id="about"></span>
</header>
<div id="status-panels"></div>
<main id="main"></main>
<footer>
  <a href="targets">/targets (JSON)</a><a href="status">/status (JSON)</a><a href="-/healthy">/-/healthy</a><a href="metrics">/metrics</a><a href="-/ready">/-/ready</a><a href="debug/pprof/">own /debug/pprof</a>
</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
