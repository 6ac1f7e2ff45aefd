import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DiscoveryError } from '../../src/discovery/index.js';
import type { Provider, ProviderFactory } from '../../src/discovery/index.js';
import type { DaemonStatusJson } from '../../src/server/routes.js';
import { startInProcessDaemon } from '../helpers/in-process-daemon.js';
import { httpGet, startFakePprofTarget } from '../helpers/operate.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import { waitUntil } from '../helpers/wait.js';

// /-/healthy and /-/ready of a running daemon: a repository that answers 503
// turns it unhealthy once delivery has stalled for server.health.delivery_stall,
// with the reason in the body, and healthy again when it takes profiles; so does
// discovery failing everywhere for discovery_failure. /-/ready waits for the
// first discovery round.

async function startDaemon(config: (dir: string) => string, providerFactory?: ProviderFactory) {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-health-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, config(dir));
  const d = await startInProcessDaemon(file, { defaultMetrics: false, configSource: `${file} (--config)`, ...(providerFactory ? { providerFactory } : {}) });
  return {
    daemon: d.daemon,
    file,
    base: d.base,
    stop: async () => {
      await d.stop({ scrapeDeadlineMs: 1000, sendDeadlineMs: 0 });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function status(base: string): Promise<DaemonStatusJson> {
  return JSON.parse((await httpGet(`${base}/status`)).text) as DaemonStatusJson;
}

test('/-/healthy: 503 naming the repository while it takes nothing and profiles wait, 200 again once it takes them', { timeout: 60_000 }, async () => {
  const target = await startFakePprofTarget();
  const profefe = await startProfefeFake();
  profefe.setFailure(() => ({ status: 503, body: '{"error":"profefe is down for maintenance"}', headers: { 'content-type': 'application/json' } }));
  const d = await startDaemon(
    (dir) => `scrape: {interval: 1s}
profiles:
  heap: {path: /debug/pprof/heap}
discovery:
  - static: {targets: [{address: "${target.address}", service: checkout}]}
repositories:
  - profefe: {url: "${profefe.url}", retry: {initial_backoff: 50ms, max_backoff: 200ms}}
server: {listen: "127.0.0.1:0", health: {delivery_stall: 1500ms, discovery_failure: 10m}}
state_dir: "${join(dir, 'state')}"
`,
  );
  try {
    await waitUntil('ready', async () => (await httpGet(`${d.base}/-/ready`)).status === 200, { timeoutMs: 10_000, everyMs: 50 });
    // profiles queue up at once, but the repository is not judged before delivery_stall has passed
    await waitUntil('profiles queued', async () => ((await status(d.base)).repositories[0]?.queued ?? 0) > 0, { timeoutMs: 10_000, everyMs: 50 });
    assert.equal((await httpGet(`${d.base}/-/healthy`)).status, 200);

    await waitUntil('unhealthy', async () => (await httpGet(`${d.base}/-/healthy`)).status === 503, { timeoutMs: 15_000, everyMs: 100 });
    const sick = await httpGet(`${d.base}/-/healthy`);
    assert.match(sick.text, /^unhealthy:\n- repository profefe \(profefe\): \d+ profiles queued, the oldest for \d+s, and none taken for \d+s \(server\.health\.delivery_stall 1s500ms\); last error \d+s ago: .*503.*; check that the repository is up and reachable\n$/);

    const down = await status(d.base);
    assert.equal(down.health.healthy, false);
    assert.equal(down.config.source, `${d.file} (--config)`);
    assert.match(down.version, /^\d+\.\d+\.\d+/);
    const repo = down.repositories[0];
    assert.ok(repo);
    assert.equal(repo.name, 'profefe');
    assert.equal(repo.stalled, true);
    assert.ok(repo.queued > 0 && repo.queuedBytes > 0 && repo.oldestAgeMs >= 1500, JSON.stringify(repo));
    assert.ok(repo.failedAttempts > 0);
    assert.match(repo.lastError?.error ?? '', /503/);
    assert.equal(repo.lastError?.permanent, false);
    assert.equal(repo.lastSuccess, undefined);

    profefe.setFailure(undefined);
    await waitUntil('healthy again', async () => (await httpGet(`${d.base}/-/healthy`)).status === 200, { timeoutMs: 15_000, everyMs: 100 });
    await waitUntil('the backlog delivered', async () => (await status(d.base)).repositories[0]?.queued === 0, { timeoutMs: 15_000, everyMs: 100 });
    const up = await status(d.base);
    assert.ok(up.repositories[0]?.lastSuccess !== undefined);
    assert.equal(up.repositories[0]?.stalled, false);
    assert.equal(up.repositories[0]?.failedAttempts, 0);
    assert.ok(profefe.received.length >= repo.queued);
  } finally {
    await d.stop();
    await target.close();
    await profefe.close();
  }
});

/** Providers whose refresh waits for `gate`, then throws while `failing` says so. */
function scriptedProviders(state: { failing: boolean; gate: Promise<void> }, address: string): ProviderFactory {
  return (_entry, source) =>
    Promise.resolve<Provider>({
      kind: 'static',
      source,
      refreshInterval: 100,
      async refresh() {
        await state.gate;
        if (state.failing) throw new DiscoveryError(`discovery[${source}].static: the inventory service answered 500`);
        return [{ address, labels: {}, service: 'checkout' }];
      },
    });
}

test('/-/ready only after the first discovery round; /-/healthy: 503 when every provider has failed for discovery_failure', { timeout: 60_000 }, async () => {
  let open = (): void => undefined;
  const state = { failing: true, gate: new Promise<void>((resolve) => (open = resolve)) };
  const d = await startDaemon(
    (dir) => `discovery:
  - static: {targets: ["127.0.0.1:1"]}
  - static: {targets: ["127.0.0.1:2"]}
repositories:
  - directory: {path: "${join(dir, 'profiles')}"}
server: {listen: "127.0.0.1:0", health: {delivery_stall: 10m, discovery_failure: 1s}}
state_dir: "${join(dir, 'state')}"
`,
    scriptedProviders(state, '127.0.0.1:3'),
  );
  try {
    // the providers have not answered: not ready, and nothing has failed yet
    const notReady = await httpGet(`${d.base}/-/ready`);
    assert.equal(notReady.status, 503);
    assert.equal((await httpGet(`${d.base}/-/healthy`)).status, 200);
    open();
    await waitUntil('ready after the first round (failed, but tried)', async () => (await httpGet(`${d.base}/-/ready`)).status === 200, { timeoutMs: 10_000, everyMs: 20 });
    assert.equal((await httpGet(`${d.base}/-/healthy`)).status, 200, 'a failure shorter than discovery_failure is not unhealthy');

    await waitUntil('unhealthy', async () => (await httpGet(`${d.base}/-/healthy`)).status === 503, { timeoutMs: 10_000, everyMs: 50 });
    const sick = await httpGet(`${d.base}/-/healthy`);
    assert.match(sick.text, /- every discovery provider has failed for \d+s \(server\.health\.discovery_failure 1s\); the last good targets are still scraped: discovery\[0\] \(static\): discovery\[0\]\.static: the inventory service answered 500; discovery\[1\] \(static\): /);

    state.failing = false;
    await waitUntil('healthy again', async () => (await httpGet(`${d.base}/-/healthy`)).status === 200, { timeoutMs: 10_000, everyMs: 50 });
  } finally {
    await d.stop();
  }
});
