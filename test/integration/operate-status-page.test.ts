import assert from 'node:assert/strict';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { Profile } from 'pprof-format';
import { startInProcessDaemon } from '../helpers/in-process-daemon.js';
import type { InProcessDaemon } from '../helpers/in-process-daemon.js';
import { skipWithoutGo, startGoTarget } from '../helpers/go-target.js';
import { httpGet, startFakePprofTarget } from '../helpers/operate.js';
import { requirePeer } from '../helpers/peers.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import { waitUntil } from '../helpers/wait.js';

// The status page in Debian's headless Chromium, driven by playwright-core:
// targets grouped by service, health per profile type, the last error, a
// download link that yields the real profile, and the repositories panel with
// one repository down (a profefe answering 503). Leaves screenshots in
// test/artifacts/ (gitignored): status-page.png, status-repository-down.png.

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

const skip = (await skipWithoutGo()) || requirePeer('chromium', await exists(CHROMIUM), `${CHROMIUM} not found`);

test('the status page in headless Chromium: services, health per type, errors, a working download link, a repository down', { skip, timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-page-'));
  const go = await startGoTarget();
  const broken = await startFakePprofTarget({ reply: { status: 200, contentType: 'text/html', body: '<html><body>Welcome to nginx!</body></html>' } });
  const profefe = await startProfefeFake();
  profefe.setFailure(() => ({ status: 503, body: '{"error":"profefe is down for maintenance"}', headers: { 'content-type': 'application/json', 'retry-after': '30' } }));
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    `scrape: {interval: 1s, timeout: 5s}
profiles:
  heap: {path: /debug/pprof/heap}
  goroutine: {path: /debug/pprof/goroutine}
discovery:
  - static:
      targets:
        - {address: "${go.address}", service: checkout, labels: {team: payments}}
        - {address: "${broken.address}", service: frontend, profiles: [heap]}
repositories:
  - directory: {path: "${join(dir, 'profiles')}"}
  - profefe: {url: "${profefe.url}"}
server: {listen: "127.0.0.1:0", health: {delivery_stall: 1s}}
state_dir: "${join(dir, 'state')}"
`,
  );
  let d: InProcessDaemon | undefined;
  const userDataDir = await mkdtemp(join(tmpdir(), 'pprof-scraper-chromium-'));
  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  try {
    d = await startInProcessDaemon(file, { defaultMetrics: false });
    const base = `${d.base}/`;
    await waitUntil('both targets scraped', async () => {
      const r = JSON.parse((await httpGet(`${base}targets`)).text) as { targets: { last: Record<string, unknown> }[] };
      return r.targets.length === 2 && r.targets.every((t) => Object.keys(t.last).length > 0) && r.targets.some((t) => Object.keys(t.last).length === 2);
    }, { timeoutMs: 20_000, everyMs: 100 });

    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      acceptDownloads: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 720 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(base);

    // grouped by service, each group a heading with its count
    const checkout = page.locator('section.service[data-service="checkout"]');
    const frontend = page.locator('section.service[data-service="frontend"]');
    await checkout.waitFor({ state: 'visible', timeout: 10_000 });
    await frontend.waitFor({ state: 'visible' });
    assert.match((await checkout.locator('h2').innerText()).trim(), /^checkout\s*1 target$/);
    const groups: (string | null)[] = [];
    for (const section of await page.locator('section.service').all()) groups.push(await section.getAttribute('data-service'));
    assert.deepEqual(groups, ['checkout', 'frontend']);
    assert.match(await checkout.innerText(), /team=payments/);

    // health per profile type
    const heapOk = checkout.locator('.type[data-type="heap"]');
    assert.equal(await heapOk.getAttribute('data-health'), 'ok');
    assert.equal(await checkout.locator('.type[data-type="goroutine"]').getAttribute('data-health'), 'ok');
    assert.ok(await heapOk.isVisible());
    assert.match(await heapOk.innerText(), /heap ✓/);
    const heapBad = frontend.locator('.type[data-type="heap"]');
    assert.equal(await heapBad.getAttribute('data-health'), 'error');
    assert.match(await heapBad.innerText(), /heap ✗/);

    // the last error, visible, saying what came back
    const error = frontend.locator('td.errors .error-text');
    assert.ok(await error.isVisible());
    assert.match(await error.innerText(), /^heap: .*html/i);
    assert.equal(await checkout.locator('td.errors .error-text').count(), 0);
    assert.match(await page.locator('#summary').innerText(), /2 targets in 2 services · 2 profile types healthy, 1 failing/);

    // the download link gives the real profile; the failing type has none
    assert.equal(await heapBad.locator('a').count(), 0);
    const [download] = await Promise.all([page.waitForEvent('download'), heapOk.locator('a', { hasText: 'download' }).click()]);
    assert.match(download.suggestedFilename(), /^checkout_heap_\d{8}T\d{6}Z_127\.0\.0\.1_\d+\.pb\.gz$/);
    const saved = join(dir, 'downloaded.pb.gz');
    await download.saveAs(saved);
    const profile = Profile.decode(gunzipSync(await readFile(saved)));
    assert.ok(profile.sample.length > 0, 'the downloaded profile has samples');

    // the filter narrows the groups
    await page.fill('#filter', 'team=payments');
    await frontend.waitFor({ state: 'detached' });
    assert.ok(await checkout.isVisible());
    await page.fill('#filter', '');
    await frontend.waitFor({ state: 'visible' });

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });

    // the repositories panel: profefe down (503, waiting for its Retry-After), the directory taking profiles
    const down = page.locator('#repositories tr[data-repository="profefe"]');
    const upRow = page.locator('#repositories tr[data-repository="directory"]');
    await down.waitFor({ state: 'visible' });
    assert.equal(await down.getAttribute('data-health'), 'down');
    // with a 1s delivery_stall, a loaded machine can judge the directory stalled for a moment: wait for a refresh that shows it taking profiles
    await page.locator('#repositories tr[data-repository="directory"][data-health="up"]').waitFor({ state: 'visible', timeout: 20_000 });
    assert.match(await down.locator('td.last-error').innerText(), /503/);
    assert.match(await down.locator('td.retry').innerText(), /^in \d+s · \d+ failed attempts?$/);
    assert.match(await down.locator('td.queued').innerText(), /^[1-9]\d* · /);
    assert.match(await upRow.innerText(), /ago/);
    assert.match(await page.locator('#about').innerText(), new RegExp(`^pprof-scraper \\d+\\.\\d+\\.\\d+.* · config: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    // once delivery has stalled for server.health.delivery_stall, the page says why /-/healthy answers 503
    await page.locator('#health').waitFor({ state: 'visible', timeout: 20_000 });
    assert.match(await page.locator('#health').innerText(), /repository profefe \(profefe\): \d+ profiles queued/);

    // failing only: the service whose every type is healthy goes
    await page.check('#failing');
    await checkout.waitFor({ state: 'detached' });
    assert.ok(await frontend.isVisible());
    await page.screenshot({ path: join(ARTIFACTS, 'status-repository-down.png'), fullPage: true });
    await page.uncheck('#failing');
    await checkout.waitFor({ state: 'visible' });
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context?.close();
    await d?.stop();
    await go.stop();
    await broken.close();
    await profefe.close();
    await rm(dir, { recursive: true, force: true });
    await rm(userDataDir, { recursive: true, force: true });
  }
});
