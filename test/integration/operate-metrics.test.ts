import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startInProcessDaemon } from '../helpers/in-process-daemon.js';
import type { InProcessDaemon } from '../helpers/in-process-daemon.js';
import { skipWithoutGo, startGoTarget } from '../helpers/go-target.js';
import { exposedValue } from '../helpers/metrics.js';
import { httpGet, startFakePprofTarget } from '../helpers/operate.js';
import { waitUntil } from '../helpers/wait.js';

const skip = await skipWithoutGo();

test('/metrics, /healthz, /-/ready and /targets follow real scrapes of a Go target', { skip, timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-metrics-'));
  const go = await startGoTarget();
  const file = join(dir, 'config.yaml');
  // one target answers in 2.5 s every 1.5 s: its ticks are skipped while
  // it runs; one is dropped by a rule; one refuses connections
  const slow = await startFakePprofTarget({ delayMs: 2500 });
  await writeFile(
    file,
    `scrape: {interval: 1500ms, timeout: 4s}
profiles:
  cpu: {path: /debug/pprof/profile, seconds: 1}
  heap: {path: /debug/pprof/heap}
  goroutine: {path: /debug/pprof/goroutine}
discovery:
  - static:
      targets:
        - {address: "${go.address}", service: go-app}
        - {address: "127.0.0.1:1", service: nobody-home, profiles: [heap]}
        - {address: "127.0.0.1:2", service: legacy}
        - {address: "${slow.address}", service: slow, profiles: [heap]}
overrides:
  - {match: {service: legacy}, drop: true}
repositories:
  - directory: {path: "${join(dir, 'profiles')}"}
server: {listen: "127.0.0.1:0"}
state_dir: "${join(dir, 'state')}"
`,
  );
  let d: InProcessDaemon | undefined;
  try {
    d = await startInProcessDaemon(file, { level: 'warn' });
    const { base } = d;
    assert.equal((await httpGet(`${base}/healthz`)).status, 200);
    await waitUntil('ready', async () => (await httpGet(`${base}/-/ready`)).status === 200, { timeoutMs: 20_000, everyMs: 100 });

    const read = async (): Promise<string> => (await httpGet(`${base}/metrics`)).text;
    const heapOk = (t: string): number => exposedValue(t, 'pprof_scraper_scrapes_total', { provider: 'static', type: 'heap', result: 'success' }) ?? 0;
    await waitUntil('a first heap scrape', async () => heapOk(await read()) >= 1, { timeoutMs: 20_000, everyMs: 100 });
    const first = await read();
    await waitUntil('two more heap scrapes and a CPU profile', async () => {
      const t = await read();
      return heapOk(t) >= heapOk(first) + 2 && (exposedValue(t, 'pprof_scraper_scrapes_total', { type: 'cpu', result: 'success' }) ?? 0) >= 1;
    }, { timeoutMs: 20_000, everyMs: 100 });
    await waitUntil('a sent profile', async () => (exposedValue(await read(), 'pprof_scraper_profiles_sent_total', { repository: 'directory', result: 'ok' }) ?? 0) >= 3, { timeoutMs: 20_000, everyMs: 100 });
    const later = await read();

    assert.ok(heapOk(later) >= heapOk(first) + 2);
    assert.ok((exposedValue(later, 'pprof_scraper_scraped_bytes_total', { type: 'heap' }) ?? 0) > (exposedValue(first, 'pprof_scraper_scraped_bytes_total', { type: 'heap' }) ?? 0));
    assert.ok((exposedValue(later, 'pprof_scraper_scrape_duration_seconds_count', { type: 'heap' }) ?? 0) >= heapOk(later));
    // lateness is a histogram: buckets, a sum and a count, no quantiles
    const late = exposedValue(later, 'pprof_scraper_schedule_lateness_seconds_count') ?? 0;
    assert.ok(late >= heapOk(later), later);
    assert.equal(exposedValue(later, 'pprof_scraper_schedule_lateness_seconds_bucket', { le: '+Inf' }), late);
    assert.ok(exposedValue(later, 'pprof_scraper_schedule_lateness_seconds_bucket', { le: '0.001' }) !== undefined);
    assert.ok((exposedValue(later, 'pprof_scraper_scrapes_total', { provider: 'static', type: 'heap' }) ?? 0) > 0);
    const failed = later.split('\n').filter((l) => l.startsWith('pprof_scraper_scrapes_total{') && l.includes('type="heap"') && !l.includes('result="success"'));
    assert.ok(failed.length > 0, 'the target with nobody home counts as failures');
    await waitUntil('a skipped tick', async () => (exposedValue(await read(), 'pprof_scraper_skipped_ticks_total', { type: 'heap' }) ?? 0) >= 1, { timeoutMs: 20_000, everyMs: 100 });
    assert.equal(exposedValue(later, 'pprof_scraper_targets', { provider: 'static' }), 3);
    assert.equal(exposedValue(later, 'pprof_scraper_dropped_targets', { provider: 'static' }), 1);
    assert.ok((exposedValue(later, 'pprof_scraper_discovery_refreshes_total', { provider: 'static', result: 'success' }) ?? 0) >= 1);
    assert.ok((exposedValue(later, 'pprof_scraper_profiles_sent_total', { repository: 'directory', result: 'ok' }) ?? 0) >= 3);
    assert.equal(exposedValue(later, 'pprof_scraper_config_last_reload_successful'), 1);
    assert.ok((exposedValue(later, 'pprof_scraper_config_hash') ?? 0) > 0);
    // prom-client's defaults, under their usual names
    assert.ok((exposedValue(later, 'process_cpu_seconds_total') ?? 0) > 0);
    assert.ok((exposedValue(later, 'nodejs_heap_size_used_bytes') ?? 0) > 0);
    assert.ok(exposedValue(later, 'process_resident_memory_bytes') !== undefined);

    // /targets: the dry run plus the last scrape per type, with a link to the profile
    const report = JSON.parse((await httpGet(`${base}/targets`)).text) as {
      targets: { service: string; last: Record<string, { result: string; bytes: number; durationMs: number; time: string; error?: string; profile?: string }> }[];
      dropped: { reason: string }[];
    };
    const goApp = report.targets.find((t) => t.service === 'go-app');
    assert.ok(goApp);
    assert.equal(goApp.last['heap']?.result, 'success');
    assert.ok((goApp.last['heap']?.bytes ?? 0) > 0);
    assert.ok(goApp.last['heap']?.profile);
    const nobody = report.targets.find((t) => t.service === 'nobody-home');
    assert.notEqual(nobody?.last['heap']?.result, 'success');
    assert.ok(nobody?.last['heap']?.error);
    assert.equal(report.dropped.length, 1);
    const download = await httpGet(`${base}/${goApp.last['heap']?.profile ?? ''}`);
    assert.equal(download.status, 200);
    assert.match(String(download.headers['content-disposition']), /attachment; filename="go-app_heap_\d{8}T\d{6}Z_.*\.pb\.gz"/);
  } finally {
    await d?.stop();
    await go.stop();
    await slow.close();
    await rm(dir, { recursive: true, force: true });
  }
});
