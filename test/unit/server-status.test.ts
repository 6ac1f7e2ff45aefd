import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { request } from 'undici';
import { createMetrics } from '../../src/metrics.js';
import type { ScrapedProfile } from '../../src/profiles/profile.js';
import { LastProfiles } from '../../src/server/last-profiles.js';
import { lastProfileLink, statusRoutes } from '../../src/server/routes.js';
import type { StatusReport, StatusSource } from '../../src/server/routes.js';
import { rebindStatusServer, startStatusServer } from '../../src/server/server.js';
import type { Handler } from '../../src/server/server.js';
import { silentLogger } from '../../src/log.js';
import { httpGet, httpPost } from '../helpers/operate.js';
import { staticStatusSource } from '../helpers/status-source.js';
import { scrapedProfile } from '../helpers/profiles.js';
import { waitUntil } from '../helpers/wait.js';

function profile(bytes: number, type = 'heap', fill = 1): ScrapedProfile {
  return scrapedProfile({ service: 'checkout api', type, time: Date.UTC(2026, 0, 2, 3, 4, 5), url: 'http://x', data: Buffer.alloc(bytes, fill) });
}

test('LastProfiles keeps the newest within its byte budget, in one ring', () => {
  const cache = new LastProfiles(1000);
  cache.set('a', profile(400));
  cache.set('b', profile(400));
  assert.equal(cache.bytes, 800);
  // c does not fit before the ring's end: it goes to its start, over a
  cache.set('c', profile(400));
  assert.equal(cache.has('a'), false, 'the oldest went first');
  assert.deepEqual([cache.has('b'), cache.has('c')], [true, true]);
  assert.equal(cache.bytes, 800);
  // a new profile of b replaces its old one, and is what a download gets
  cache.set('b', profile(300, 'heap', 7));
  assert.deepEqual([cache.has('b'), cache.has('c'), cache.size], [true, true, 2]);
  assert.deepEqual([...(cache.get('b')?.data ?? [])], Array<number>(300).fill(7));
  assert.deepEqual([...(cache.get('c')?.data ?? [])], Array<number>(400).fill(1));
  // d goes over c's bytes; b, newer than c, stays
  cache.set('d', profile(400, 'heap', 9));
  assert.deepEqual([cache.has('b'), cache.has('c'), cache.has('d')], [true, false, true]);
  assert.equal(cache.get('c'), undefined);
  assert.deepEqual([...(cache.get('d')?.data ?? [])], Array<number>(400).fill(9));
  // bigger than the whole budget: not kept, nothing else lost for it
  cache.set('e', profile(1001));
  assert.deepEqual([cache.has('e'), cache.size], [false, 2]);
  cache.retain(new Set(['d']));
  assert.deepEqual([cache.has('b'), cache.has('d'), cache.bytes], [false, true, 400]);
});

test('LastProfiles: whatever is held is what was last set for its key, the newest always among them', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 700 })), { minLength: 1, maxLength: 60 }), (ops) => {
      const cache = new LastProfiles(1000);
      const last = new Map<string, { fill: number; length: number; order: number }>();
      ops.forEach(([k, length], order) => {
        const fill = order % 251;
        cache.set(String(k), profile(length, 'heap', fill));
        last.set(String(k), { fill, length, order });
      });
      const [newestKey] = [...last].sort((x, y) => y[1].order - x[1].order)[0] ?? [];
      assert.ok(newestKey !== undefined && cache.has(newestKey), 'the newest profile is held');
      assert.ok(cache.bytes <= 1000);
      let oldestHeld = Infinity;
      for (const [k, want] of last) {
        const got = cache.get(k);
        if (!got) continue;
        oldestHeld = Math.min(oldestHeld, want.order);
        assert.equal(got.data.length, want.length);
        assert.ok(got.data.every((b) => b === want.fill), `${k} holds its last profile's bytes`);
      }
      // held are the newest: none newer than the oldest held is missing
      for (const [k, want] of last) if (want.order > oldestHeld) assert.ok(cache.has(k), `${k} is newer than one held`);
    }),
  );
});

test('LastProfiles gives a copy in its own memory', () => {
  const cache = new LastProfiles(1 << 20);
  const big = Buffer.alloc(64 * 1024);
  cache.set('a', { ...profile(0), data: big.subarray(0, 100) });
  assert.equal(cache.get('a')?.data.buffer.byteLength, 100);
});

test('LastProfiles stays bounded with 10k targets × 6 types', () => {
  const cache = new LastProfiles(32 * 1024 ** 2);
  for (let t = 0; t < 10_000; t++) for (let k = 0; k < 6; k++) cache.set(`${t}/${k}`, profile(20_000));
  assert.ok(cache.bytes <= 32 * 1024 ** 2);
  // the ring's skipped end costs at most one profile
  assert.ok(cache.size >= Math.floor((32 * 1024 ** 2) / 20_000) - 1, `${cache.size} held`);
  assert.ok(cache.has('9999/5'));
});

function fakeSource(): StatusSource & { setReady(v: boolean): void; setReasons(r: string[]): void; held: Map<string, ScrapedProfile> } {
  let ready = false;
  let reasons: string[] = [];
  const held = new Map<string, ScrapedProfile>();
  const report: StatusReport = {
    targets: [{ id: 'abc123', provider: 'static', service: 'checkout api', address: '10.0.0.7:6060', scheme: 'http', labels: {}, interval: '60s', profiles: [{ type: 'heap', url: 'http://10.0.0.7:6060/debug/pprof/heap' }], last: {} }],
    dropped: [],
    errors: [],
  };
  const base = staticStatusSource();
  return {
    ...base,
    metrics: createMetrics({ defaultMetrics: false }),
    get ready() {
      return ready;
    },
    setReady: (v) => (ready = v),
    setReasons: (r) => (reasons = r),
    health: () => ({ healthy: reasons.length === 0, reasons }),
    status: () => ({ ...base.status(), version: '9.9.9', config: { source: '/etc/pprof-scraper/config.yaml' } }),
    held,
    report: () => report,
    lastProfile: (id, type) => held.get(`${id}/${type}`),
  };
}

test('status routes: health, readiness, the page, /targets, downloads, methods', async () => {
  const source = fakeSource();
  const routes = statusRoutes(source);
  routes.set('POST /-/reload', (_req, res) => {
    res.end('reloaded');
  });
  const server = await startStatusServer('127.0.0.1:0', routes, silentLogger(), { enableReload: true });
  const base = `http://${server.address}`;
  try {
    assert.equal((await httpGet(`${base}/healthz`)).status, 200);
    const notReady = await httpGet(`${base}/-/ready`);
    assert.equal(notReady.status, 503);
    source.setReady(true);
    assert.equal((await httpGet(`${base}/-/ready`)).status, 200);

    // /-/healthy follows the daemon's judgement, with the reasons in the body
    assert.equal((await httpGet(`${base}/-/healthy`)).status, 200);
    source.setReasons(['repository pyroscope (pyroscope): 3 profiles queued', 'every discovery provider has failed for 11m']);
    const sick = await httpGet(`${base}/-/healthy`);
    assert.equal(sick.status, 503);
    assert.equal(sick.text, 'unhealthy:\n- repository pyroscope (pyroscope): 3 profiles queued\n- every discovery provider has failed for 11m\n');
    source.setReasons([]);
    assert.equal((await httpGet(`${base}/-/healthy`)).status, 200);
    const status = JSON.parse((await httpGet(`${base}/status`)).text) as { version: string; config: { source: string } };
    assert.deepEqual([status.version, status.config.source], ['9.9.9', '/etc/pprof-scraper/config.yaml']);

    const page = await httpGet(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.text, /<title>pprof-scraper<\/title>/);
    assert.match(page.text, /fetch\('targets'/);
    // discovery data reaches the DOM only as text
    assert.doesNotMatch(page.text, /innerHTML/);

    const targets = JSON.parse((await httpGet(`${base}/targets`)).text) as StatusReport;
    assert.equal(targets.targets[0]?.service, 'checkout api');
    assert.match((await httpGet(`${base}/metrics`)).text, /pprof_scraper_scrapes_total/);

    const link = lastProfileLink('abc123', 'heap');
    assert.equal(link, 'targets/last-profile?target=abc123&type=heap');
    assert.equal((await httpGet(`${base}/${link}`)).status, 404);
    assert.equal((await httpGet(`${base}/targets/last-profile`)).status, 400);
    source.held.set('abc123/heap', profile(10));
    const res = await request(`${base}/${link}`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-disposition'], 'attachment; filename="checkout_api_heap_20260102T030405Z_10.0.0.7_6060.pb.gz"');
    assert.equal((await res.body.arrayBuffer()).byteLength, 10);

    assert.equal((await httpPost(`${base}/-/reload`)).status, 200);
    assert.equal((await httpGet(`${base}/-/reload`)).status, 405);
    assert.equal((await httpPost(`${base}/targets`)).status, 405);
    assert.equal((await httpGet(`${base}/nope`)).status, 404);
  } finally {
    await server.close();
  }
});

test('close(grace) stops listening at once and lets a request in progress finish', async () => {
  let release: (() => void) | undefined;
  const routes = new Map<string, Handler>([
    [
      '/slow',
      async (_req, res) => {
        await new Promise<void>((r) => (release = r));
        res.end('done');
      },
    ],
  ]);
  const server = await startStatusServer('127.0.0.1:0', routes, silentLogger());
  const pending = httpGet(`http://${server.address}/slow`);
  await waitUntil('the request in its handler', () => release !== undefined);
  const closed = server.close(2_000);
  // stays a sleep: "at once" means within these 20 ms
  await new Promise((r) => setTimeout(r, 20));
  await assert.rejects(httpGet(`http://${server.address}/slow`), /ECONNREFUSED/);
  release!();
  assert.equal((await pending).text, 'done');
  await closed;
});

test('rebind moves the listener; a port in use leaves it where it was', async () => {
  const routes = statusRoutes(fakeSource());
  const first = await startStatusServer('127.0.0.1:0', routes, silentLogger());
  const moved = await rebindStatusServer(first, '127.0.0.1:0', routes, silentLogger(), 0);
  assert.ok('server' in moved);
  assert.notEqual(moved.server.address, first.address);
  assert.equal((await httpGet(`http://${moved.server.address}/healthz`)).status, 200);
  await assert.rejects(httpGet(`http://${first.address}/healthz`));

  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
  const taken = `127.0.0.1:${(squatter.address() as AddressInfo).port}`;
  try {
    const refused = await rebindStatusServer(moved.server, taken, routes, silentLogger(), 0);
    assert.ok('error' in refused);
    assert.match(refused.error.message, /in use/);
    assert.equal(refused.restored?.address, moved.server.address, 'back on the old address');
    assert.equal((await httpGet(`http://${moved.server.address}/healthz`)).status, 200);
    await refused.restored?.close();
  } finally {
    await new Promise<void>((r) => squatter.close(() => r()));
  }
});
