import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigLoadError, formatConfigError, loadConfigFile, MAX_ALIAS_VALUES, MAX_CONFIG_BYTES, parseConfig } from '../../src/config/index.js';
import type { LoadedConfig } from '../../src/config/index.js';
import type { ApplyReport } from '../../src/daemon.js';
import { createMetrics } from '../../src/metrics.js';
import { Reloader, reloadRoute } from '../../src/reload.js';
import { captureLogger } from '../helpers/log.js';
import { exposedValue } from '../helpers/metrics.js';

// Section "The config file: trusted but bounded" of docs/security.md: a file
// that would take the loader down is a config error with its place, like any other.

const REPO = 'repositories:\n  - directory: {path: ./p}\n';

/** Nine levels of nine aliases each: 9^9 values once expanded. */
const ALIAS_BOMB = `${['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']
  .map((name, i, all) => `${name}: &${name} [${Array.from({ length: 9 }, () => (i === 0 ? '"lol"' : `*${all[i - 1] ?? ''}`)).join(', ')}]`)
  .join('\n')}\n${REPO}`;

function errorsOf(yaml: string): string[] {
  try {
    parseConfig(yaml, 'F', { baseDir: '.', env: {} });
  } catch (err) {
    assert.ok(err instanceof ConfigLoadError, `expected ConfigLoadError, got ${err instanceof Error ? err.stack : String(err)}`);
    return err.errors.map(formatConfigError);
  }
  assert.fail('the config loaded');
}

describe('a config that would take the loader down is a config error', () => {
  test('an alias bomb: refused at the alias that crosses the limit, at once', () => {
    const started = Date.now();
    assert.deepEqual(errorsOf(ALIAS_BOMB), [
      `F:6:8: f[0]: aliases expand the config by more than ${MAX_ALIAS_VALUES} values (nested anchors, as in a "billion laughs" YAML bomb): use fewer aliases, or write the values out`,
    ]);
    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
  });

  test('an alias used hundreds of times, as configs do, is fine', () => {
    const targets = Array.from({ length: 300 }, (_, i) => `        - {address: "10.0.${Math.floor(i / 250)}.${i % 250}:6060", labels: *common}`).join('\n');
    const loaded = parseConfig(`scrape:\n  labels: &common {team: core, tier: gold}\ndiscovery:\n  - static:\n      targets:\n${targets}\n${REPO}`, 'F', { baseDir: '.', env: {} });
    const last = loaded.config.discovery[0]?.static?.targets[299];
    assert.deepEqual(typeof last === 'object' ? last.labels : undefined, { team: 'core', tier: 'gold' });
  });

  const cases: { name: string; yaml: string; errors: string[] }[] = [
    {
      name: 'an alias with no anchor before it',
      yaml: `scrape:\n  labels: *common\n${REPO}`,
      errors: ['F:2:11: scrape.labels: alias *common has no anchor &common before it'],
    },
    {
      name: 'a value that contains itself',
      yaml: `scrape:\n  labels: &l {a: *l}\n${REPO}`,
      errors: ['F:2:18: scrape.labels.a: alias *l is inside the value of its own anchor &l: a value cannot contain itself'],
    },
    {
      name: 'a list as a key',
      yaml: `scrape:\n  labels:\n    ? [a, b]\n    : c\n${REPO}`,
      errors: ['F:3:7: scrape.labels: a key must be a plain value, not a list'],
    },
    {
      name: 'nesting deeper than a config ever does',
      yaml: `scrape:\n  labels: {a: ${'['.repeat(150)}${']'.repeat(150)}}\n${REPO}`,
      errors: ['F:2:113: scrape.labels.a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 100 levels: a config needs a dozen at most'],
    },
    {
      name: 'nesting so deep the YAML parser gives up',
      yaml: `scrape:\n  labels: {a: ${'['.repeat(5000)}${']'.repeat(5000)}}\n${REPO}`,
      errors: [],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const errors = errorsOf(c.yaml);
      if (c.errors.length > 0) assert.deepEqual(errors, c.errors);
      else assert.match(errors.join('\n'), /^F:2:\d+: the YAML nests too deeply: at most 100 levels$/);
    });
  }

  test('a text over the size cap is refused before it is parsed', () => {
    const big = `${REPO}# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`;
    assert.deepEqual(errorsOf(big), ['F:1:1: the file is larger than 1 MiB, the most a config may be: check that --config names the config file']);
  });
});

describe('config files on disk', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-limits-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a file over the size cap, and an endless device, are refused without reading them whole', async () => {
    const file = join(dir, 'big.yaml');
    await writeFile(file, `${REPO}# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    for (const path of [file, '/dev/zero']) {
      await assert.rejects(loadConfigFile(path, { env: {} }), (err: unknown) => {
        assert.ok(err instanceof ConfigLoadError);
        assert.deepEqual(err.errors.map(formatConfigError), [`${path}:1:1: the file is larger than 1 MiB, the most a config may be: check that --config names the config file`]);
        return true;
      });
    }
  });

  const REPORT: ApplyReport = {
    providers: { started: 0, stopped: 0, kept: 1 },
    repositories: { added: [], removed: [], swapped: [], kept: ['directory'] },
    targets: { added: 0, removed: 0, kept: 1 },
  };

  // SIGHUP and the file watch call reload('signal'/'file') with nobody to
  // catch a rejection; POST /-/reload answered 500. Each must refuse the file
  // as invalid, count it, log it and keep the old config.
  test('a reload with an alias bomb: refused as invalid, counted, logged; the old config runs on; HTTP answers 400', async () => {
    const file = join(dir, 'reload.yaml');
    await writeFile(file, `discovery:\n  - static: {targets: ["127.0.0.1:6060"]}\n${REPO}`);
    const applied: LoadedConfig[] = [];
    const daemon = { apply: async (loaded: LoadedConfig): Promise<ApplyReport> => (applied.push(loaded), REPORT) };
    const log = captureLogger();
    const metrics = createMetrics({ defaultMetrics: false });
    const reloader = new Reloader({ daemon, path: file, logger: log.logger, metrics, env: {} });
    assert.equal((await reloader.reload('start')).status, 'applied');

    await writeFile(file, ALIAS_BOMB);
    for (const trigger of ['signal', 'file'] as const) {
      const result = await reloader.reload(trigger);
      assert.equal(result.status, 'invalid');
      assert.match(result.status === 'invalid' ? formatConfigError(result.errors[0]!) : '', /reload\.yaml:6:8: f\[0\]: aliases expand the config/);
      assert.equal(exposedValue(await metrics.registry.metrics(), 'pprof_scraper_config_reloads_total', { trigger, result: 'invalid' }), 1);
      // the file watch skips a text it already refused: write it anew for the next trigger
      await writeFile(file, `${ALIAS_BOMB}# ${trigger}\n`);
    }
    assert.equal(applied.length, 1, 'the old config runs on');
    assert.equal(exposedValue(await metrics.registry.metrics(), 'pprof_scraper_config_last_reload_successful'), 0);
    assert.ok(log.find(/reload refused: the config is not valid/).length >= 2);
    assert.ok(log.records.some((r) => r['line'] === 6 && r['column'] === 8 && typeof r['msg'] === 'string' && r['msg'].startsWith('aliases expand')));

    const route = reloadRoute(reloader);
    const server = createServer((req, res) => void route(req, res, new URL(req.url ?? '/', 'http://127.0.0.1')));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/-/reload`, { method: 'POST' });
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.match(text, /^reload refused: the config is not valid; the old config runs on\n.*reload\.yaml:6:8: f\[0\]: aliases expand/);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    assert.equal(applied.length, 1);
  });

  test('a reload never rejects: an apply that throws leaves the old config, counted as failed', async () => {
    const file = join(dir, 'throws.yaml');
    await writeFile(file, REPO);
    const log = captureLogger();
    const metrics = createMetrics({ defaultMetrics: false });
    const daemon = {
      apply: async (): Promise<ApplyReport> => {
        throw new Error('listen EADDRINUSE for http://user:s3cret-pw@127.0.0.1:1');
      },
    };
    const reloader = new Reloader({ daemon, path: file, logger: log.logger, metrics, env: {} });
    const result = await reloader.reload('signal');
    assert.deepEqual(result, { status: 'failed', error: 'listen EADDRINUSE for http://user:***@127.0.0.1:1' });
    assert.equal(exposedValue(await metrics.registry.metrics(), 'pprof_scraper_config_reloads_total', { trigger: 'signal', result: 'failed' }), 1);
    assert.ok(!JSON.stringify(log.records).includes('s3cret-pw'));
  });
});
