import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { startInProcessDaemon } from '../helpers/in-process-daemon.js';
import type { InProcessDaemon } from '../helpers/in-process-daemon.js';
import { httpGet, startFakePprofTarget } from '../helpers/operate.js';
import { requirePeer } from '../helpers/peers.js';
import { waitUntil } from '../helpers/wait.js';

// The example alert rules and Grafana dashboard in deploy/: the rules pass
// promtool, and every metric their queries name is on a running daemon's
// /metrics.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RULES = join(ROOT, 'deploy/prometheus/alerts.yaml');
const DASHBOARD = join(ROOT, 'deploy/grafana/pprof-scraper.json');
const run = promisify(execFile);

async function hasPromtool(): Promise<boolean> {
  try {
    await run('promtool', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** Prometheus's own series, which no exporter serves. */
const PROMETHEUS_OWN = new Set(['up']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression reads: what is left once strings, label matchers, ranges, grouping lists, functions and keywords are taken out. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice((m.index ?? 0) + m[0].length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}

function ruleExpressions(text: string): string[] {
  const doc = parse(text) as { groups: { rules: { expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

function dashboardExpressions(text: string): string[] {
  const doc = JSON.parse(text) as { panels: { targets?: { expr: string }[] }[]; templating: { list: { query?: unknown }[] } };
  const panels = doc.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  // label_values(metric, label) in a variable's query names a metric too
  const variables = doc.templating.list.flatMap((v) => (typeof v.query === 'string' ? [...v.query.matchAll(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/g)].map((m) => m[1] ?? '') : []));
  return [...panels, ...variables];
}

test('metricNames finds the series an expression reads, and nothing else', () => {
  assert.deepEqual(metricNames('max by (service) (pprof_scraper_target_up{instance=~"a|b"}) == 0'), ['pprof_scraper_target_up']);
  assert.deepEqual(
    metricNames('pprof_scraper_queue_oldest_age_seconds > 600 and on (instance, repository) increase(pprof_scraper_profiles_sent_total{result="ok"}[10m]) == 0'),
    ['pprof_scraper_queue_oldest_age_seconds', 'pprof_scraper_profiles_sent_total'],
  );
  assert.deepEqual(metricNames('histogram_quantile(0.9, sum by (le, type) (rate(x_bucket[5m])))'), ['x_bucket']);
});

test('the example alert rules pass promtool check rules', { skip: requirePeer('promtool', await hasPromtool(), 'promtool not found on PATH') }, async () => {
  const { stdout } = await run('promtool', ['check', 'rules', RULES]);
  assert.match(stdout, /SUCCESS: \d+ rules found/);
  // and promtool does fail on a broken expression, so the check above means something
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-rules-'));
  try {
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, (await readFile(RULES, 'utf8')).replace('pprof_scraper_target_up == 0', 'pprof_scraper_target_up == == 0'));
    await assert.rejects(run('promtool', ['check', 'rules', broken]));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('every metric the alert rules and the dashboard query is on a running daemon\'s /metrics', { timeout: 60_000 }, async () => {
  const rules = ruleExpressions(await readFile(RULES, 'utf8'));
  const panels = dashboardExpressions(await readFile(DASHBOARD, 'utf8'));
  assert.ok(rules.length >= 5 && panels.length >= 10, `${rules.length} rules, ${panels.length} dashboard queries`);
  const wanted = new Set([...rules, ...panels].flatMap(metricNames));
  assert.ok(wanted.has('pprof_scraper_target_up'));

  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-alerts-'));
  const target = await startFakePprofTarget();
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    `scrape: {interval: 1s}
profiles:
  heap: {path: /debug/pprof/heap}
discovery:
  - static: {targets: [{address: "${target.address}", service: checkout}, {address: "127.0.0.1:1", service: gone}]}
repositories:
  - directory: {path: "${join(dir, 'profiles')}"}
server: {listen: "127.0.0.1:0"}
state_dir: "${join(dir, 'state')}"
`,
  );
  let d: InProcessDaemon | undefined;
  try {
    d = await startInProcessDaemon(file);
    const { base } = d;
    let text = '';
    await waitUntil('a sent profile and both targets scraped', async () => {
      text = (await httpGet(`${base}/metrics`)).text;
      return /^pprof_scraper_profiles_sent_total\{.*result="ok".*\} [1-9]/m.test(text) && /^pprof_scraper_target_up\{.*service="gone".*\} 0$/m.test(text);
    }, { timeoutMs: 20_000, everyMs: 100 });
    const served = new Set<string>();
    for (const line of text.split('\n')) {
      const m = /^(?:# TYPE )?([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
      if (m?.[1] && !line.startsWith('# HELP')) served.add(m[1]);
    }
    const missing = [...wanted].filter((n) => !served.has(n) && !PROMETHEUS_OWN.has(n));
    assert.deepEqual(missing, [], 'metrics the rules or the dashboard name that the daemon does not serve');
  } finally {
    await d?.stop();
    await target.close();
    await rm(dir, { recursive: true, force: true });
  }
});
