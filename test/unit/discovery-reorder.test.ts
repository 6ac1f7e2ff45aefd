import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import type { DiscoveryEntry } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon.js';
import { createProvider, DiscoveryError, DiscoveryManager, providerKindOf } from '../../src/discovery/index.js';
import type { ProviderFactory } from '../../src/discovery/index.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { captureLogger } from '../helpers/log.js';
import { HEAP_FIXTURE } from '../helpers/operate.js';
import { waitUntil } from '../helpers/wait.js';

function entries(yaml: string): DiscoveryEntry[] {
  return parseConfig(`discovery:\n${yaml}repositories:\n  - directory: {path: ./p}\n`, 'test.yaml', { baseDir: tmpdir() }).config.discovery;
}

const A = '  - static: {service: a, targets: ["10.0.0.1:6060"]}\n';
const B = '  - static: {service: b, targets: ["10.0.0.2:6060"]}\n';
const C = '  - static: {service: c, targets: ["10.0.0.3:6060"]}\n';
// an entry whose provider starts, then fails every refresh: stands for an EC2 or Docker entry whose API says no
const FAILING = '  - static: {service: broken, targets: ["10.0.0.9:6060"]}\n';

/** The real factory, counting the providers it starts, by service; `broken` fails its refreshes with a message naming its entry, as real providers do. */
function countingFactory(): { factory: ProviderFactory; starts: Map<string, number> } {
  const starts = new Map<string, number>();
  const factory: ProviderFactory = async (entry, source, deps) => {
    const service = entry.static?.service ?? providerKindOf(entry);
    starts.set(service, (starts.get(service) ?? 0) + 1);
    const provider = await createProvider(entry, source, deps);
    if (service !== 'broken') return provider;
    return { ...provider, refreshInterval: 3_600_000, refresh: () => Promise.reject(new DiscoveryError(`discovery[${source}].static: the API said no`)) };
  };
  return { factory, starts };
}

void test('a reorder of discovery: keeps every runner with its last answer, each under its new index', async () => {
  const { factory, starts } = countingFactory();
  const manager = new DiscoveryManager({ logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }), onChange: () => undefined, factory });
  try {
    await manager.apply(entries(A + B + FAILING));
    await manager.firstRefresh();
    const groupsBefore = manager.groups();
    assert.deepEqual(manager.problems(), [{ provider: 'static', source: 2, error: 'discovery[2].static: the API said no' }]);

    const summary = await manager.apply(entries(FAILING + B + A));
    assert.deepEqual(summary, { started: 0, stopped: 0, kept: 3 });
    assert.deepEqual(Object.fromEntries(starts), { a: 1, b: 1, broken: 1 }, 'no provider started again');
    assert.ok(manager.ready, 'the kept runners have answered already');
    // the same answers, each under its entry's new index (the target builder and the clients go by it)
    const groupsAfter = manager.groups();
    assert.deepEqual(
      groupsAfter.map((g) => [g.source, g.targets]),
      [
        [1, groupsBefore[1]?.targets],
        [2, groupsBefore[0]?.targets],
      ],
    );
    assert.deepEqual(manager.problems(), [{ provider: 'static', source: 0, error: 'discovery[0].static: the API said no' }], 'an error names where its entry is now');

    // only what changed starts; what left stops
    const changed = await manager.apply(entries(C + FAILING + A));
    assert.deepEqual(changed, { started: 1, stopped: 1, kept: 2 });
    assert.deepEqual(Object.fromEntries(starts), { a: 1, b: 1, broken: 1, c: 1 });
  } finally {
    await manager.stop();
  }
});

void test('the same entry twice: each copy keeps a runner of its own', async () => {
  const { factory, starts } = countingFactory();
  const manager = new DiscoveryManager({ logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }), onChange: () => undefined, factory });
  try {
    await manager.apply(entries(A + A + B));
    assert.deepEqual(await manager.apply(entries(B + A + A)), { started: 0, stopped: 0, kept: 3 });
    await manager.firstRefresh();
    assert.deepEqual(manager.groups().map((g) => g.source), [0, 1, 2]);
    assert.deepEqual(await manager.apply(entries(A + B)), { started: 0, stopped: 1, kept: 2 });
    assert.deepEqual(Object.fromEntries(starts), { a: 2, b: 1 });
  } finally {
    await manager.stop();
  }
});

/** A pprof target that notes the Authorization header of each request. */
async function startTarget(): Promise<{ address: string; tokens: string[]; close: () => Promise<void> }> {
  const tokens: string[] = [];
  const server = createServer((req, res) => {
    tokens.push(req.headers.authorization ?? '');
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(HEAP_FIXTURE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    tokens,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

void test('the daemon: a reload that swaps two entries restarts neither, and each target keeps its own entry\'s credentials', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-reorder-'));
  const one = await startTarget();
  const two = await startTarget();
  const log = captureLogger();
  const daemon = new Daemon({ logger: log.logger, metrics: createMetrics({ defaultMetrics: false }) });
  const entryOne = `  - static: {service: one, targets: ["${one.address}"], bearer_token: token-one}\n`;
  const entryTwo = `  - static: {service: two, targets: ["${two.address}"], bearer_token: token-two}\n`;
  const config = (list: string) =>
    parseConfig(
      `scrape: {interval: 1s}\nprofiles: {heap: {path: /debug/pprof/heap}}\ndiscovery:\n${list}repositories:\n  - directory: {path: ${join(dir, 'profiles')}}\nserver: {listen: "127.0.0.1:0"}\nstate_dir: ${join(dir, 'state')}\n`,
      'test.yaml',
      { baseDir: dir },
    );
  try {
    await daemon.apply(config(entryOne + entryTwo));
    await waitUntil('a scrape of each', () => one.tokens.length > 0 && two.tokens.length > 0, { timeoutMs: 15_000 });
    const ids = daemon.report().targets.map((t) => t.id).sort();

    const report = await daemon.apply(config(entryTwo + entryOne));
    assert.deepEqual(report.providers, { started: 0, stopped: 0, kept: 2 });
    assert.deepEqual(report.targets, { added: 0, removed: 0, kept: 2 });
    assert.deepEqual(daemon.report().targets.map((t) => t.id).sort(), ids);
    const [n1, n2] = [one.tokens.length, two.tokens.length];
    await waitUntil('two scrapes of each after the reload', () => one.tokens.length >= n1 + 2 && two.tokens.length >= n2 + 2, { timeoutMs: 15_000 });
    assert.deepEqual(new Set(one.tokens), new Set(['Bearer token-one']));
    assert.deepEqual(new Set(two.tokens), new Set(['Bearer token-two']));
  } finally {
    await daemon.stop({ scrapeDeadlineMs: 0, sendDeadlineMs: 0 });
    await one.close();
    await two.close();
    await rm(dir, { recursive: true, force: true });
  }
});
