import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { LoadedConfig } from '../../src/config/index.js';
import type { ApplyReport } from '../../src/daemon.js';
import { createMetrics } from '../../src/metrics.js';
import { hashToNumber, Reloader } from '../../src/reload.js';
import { captureLogger } from '../helpers/log.js';
import { exposedValue } from '../helpers/metrics.js';
import { waitUntil } from '../helpers/wait.js';

const REPORT: ApplyReport = {
  providers: { started: 0, stopped: 0, kept: 1 },
  repositories: { added: [], removed: [], swapped: [], kept: ['directory'] },
  targets: { added: 0, removed: 0, kept: 1 },
};

function valid(service: string): string {
  return `discovery:\n  - static: {service: ${service}, targets: ["127.0.0.1:6060"]}\nrepositories:\n  - directory: {path: ./profiles}\n`;
}

/** A daemon stand-in that records what it was given, optionally held at a gate. */
function fakeDaemon() {
  const applied: LoadedConfig[] = [];
  const events: string[] = [];
  let gate: Promise<void> | undefined;
  let fail: string | undefined;
  return {
    applied,
    events,
    hold(): () => void {
      let open: () => void = () => undefined;
      gate = new Promise((r) => (open = r));
      return () => {
        gate = undefined;
        open();
      };
    },
    failWith(message: string | undefined): void {
      fail = message;
    },
    async apply(loaded: LoadedConfig): Promise<ApplyReport> {
      events.push(`start ${applied.length}`);
      await gate;
      if (fail) throw new Error(fail);
      applied.push(loaded);
      events.push(`end ${applied.length - 1}`);
      return REPORT;
    },
  };
}

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-reloader-'));
  const file = join(dir, 'config.yaml');
  const daemon = fakeDaemon();
  const log = captureLogger();
  const metrics = createMetrics({ defaultMetrics: false });
  const reloader = new Reloader({ daemon, path: file, logger: log.logger, metrics });
  return { dir, file, daemon, log, metrics, reloader, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

test('reloads are serialised: one that arrives while another runs waits for it', async () => {
  const { file, daemon, reloader, cleanup } = await setup();
  try {
    await writeFile(file, valid('one'));
    const release = daemon.hold();
    const first = reloader.reload('signal');
    await waitUntil('the first apply to start', () => daemon.events.length === 1);
    await writeFile(file, valid('two'));
    const second = reloader.reload('http');
    // a sleep on purpose: the second must not start within it
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(daemon.events, ['start 0'], 'the second waits while the first runs');
    release();
    assert.equal((await first).status, 'applied');
    assert.equal((await second).status, 'applied');
    assert.deepEqual(daemon.events, ['start 0', 'end 0', 'start 1', 'end 1']);
    assert.equal(daemon.applied[1]?.config.discovery[0]?.static?.service, 'two');
  } finally {
    await cleanup();
  }
});

test('an invalid file is never applied: every error with line and column, metrics at 0, then 1 again', async () => {
  const { file, daemon, log, metrics, reloader, cleanup } = await setup();
  try {
    await writeFile(file, valid('one'));
    assert.equal((await reloader.reload('start')).status, 'applied');
    const text1 = valid('one');
    const read = async (): Promise<string> => metrics.registry.metrics();
    assert.equal(exposedValue(await read(), 'pprof_scraper_config_last_reload_successful'), 1);
    assert.equal(exposedValue(await read(), 'pprof_scraper_config_hash'), hashToNumber(createHash('sha256').update(text1).digest('hex')));

    await writeFile(file, 'scrape:\n  interval: soon\n  timeout: never\nrepositories:\n  - directory: {path: ./profiles}\n');
    const result = await reloader.reload('signal');
    assert.equal(result.status, 'invalid');
    assert.ok(result.status === 'invalid');
    assert.deepEqual(result.errors.map((e) => [e.line, e.path]), [[2, 'scrape.interval'], [3, 'scrape.timeout']]);
    assert.ok(result.errors.every((e) => e.column > 0 && e.source === file));
    assert.equal(daemon.applied.length, 1, 'not applied');
    const logged = log.records.filter((r) => r['trigger'] === 'signal' && typeof r['line'] === 'number');
    assert.deepEqual(logged.map((r) => [r['line'], r['path']]), [[2, 'scrape.interval'], [3, 'scrape.timeout']]);
    assert.equal(log.find(/^reload refused/).length, 1);
    const after = await read();
    assert.equal(exposedValue(after, 'pprof_scraper_config_last_reload_successful'), 0);
    assert.equal(exposedValue(after, 'pprof_scraper_config_reloads_total', { trigger: 'signal', result: 'invalid' }), 1);
    assert.equal(exposedValue(after, 'pprof_scraper_config_hash'), hashToNumber(createHash('sha256').update(text1).digest('hex')), 'the hash is still the running config');

    await rm(file);
    const missing = await reloader.reload('http');
    assert.ok(missing.status === 'invalid');
    assert.match(missing.errors[0]?.message ?? '', /cannot read the config file: ENOENT/);

    await writeFile(file, valid('two'));
    assert.equal((await reloader.reload('http')).status, 'applied');
    assert.equal(exposedValue(await read(), 'pprof_scraper_config_last_reload_successful'), 1);
  } finally {
    await cleanup();
  }
});

test('a valid file the daemon cannot apply: failed, the metric says so', async () => {
  const { file, daemon, metrics, reloader, cleanup } = await setup();
  try {
    await writeFile(file, valid('one'));
    daemon.failWith('server.listen 127.0.0.1:1: permission denied');
    const result = await reloader.reload('http');
    assert.deepEqual(result, { status: 'failed', error: 'server.listen 127.0.0.1:1: permission denied' });
    assert.equal(exposedValue(await metrics.registry.metrics(), 'pprof_scraper_config_last_reload_successful'), 0);
  } finally {
    await cleanup();
  }
});

test('after close() no reload runs', async () => {
  const { file, daemon, reloader, cleanup } = await setup();
  try {
    await writeFile(file, valid('one'));
    await reloader.close();
    assert.equal((await reloader.reload('signal')).status, 'failed');
    assert.equal(daemon.applied.length, 0);
  } finally {
    await cleanup();
  }
});

test('the watcher: a burst of writes is one reload; renamed-over files count; other files and unchanged text do not', async () => {
  const { dir, file, daemon, log, reloader, cleanup } = await setup();
  await writeFile(file, valid('zero'));
  assert.equal((await reloader.reload('start')).status, 'applied');
  const watcher = reloader.watch({ debounceMs: 400 });
  // atomic writes where the test counts refusals: an in-place write can be read half done
  const replace = async (text: string): Promise<void> => {
    await writeFile(join(dir, '.next.yaml'), text);
    await rename(join(dir, '.next.yaml'), file);
  };
  try {
    // a burst: one reload, of the last text
    for (const s of ['a', 'b', 'c', 'd']) {
      await writeFile(file, valid(s));
      // spaces the writes of the burst, well inside the debounce; waits for nothing
      await new Promise((r) => setTimeout(r, 10));
    }
    await waitUntil('a reload', () => daemon.applied.length >= 2);
    // sleeps on purpose here and below: no further reload may come within them
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(daemon.applied.length, 2, 'one reload for the burst');
    assert.equal(daemon.applied[1]?.config.discovery[0]?.static?.service, 'd');

    // an editor's save: a new file renamed over the old one
    await writeFile(join(dir, '.config.yaml.swp'), valid('e'));
    await rename(join(dir, '.config.yaml.swp'), file);
    await waitUntil('the renamed-over file applied', () => daemon.applied.length === 3);
    assert.equal(daemon.applied[2]?.config.discovery[0]?.static?.service, 'e');

    // the same text written again, and another file in the folder: no reload
    await replace(valid('e'));
    await writeFile(join(dir, 'other.yaml'), valid('f'));
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(daemon.applied.length, 3);

    // an invalid edit is tried once; the same invalid text again is not
    await replace('scrape: [');
    await waitUntil('the refusal', () => log.find(/^reload refused/).length === 1);
    await replace('scrape: [');
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(daemon.applied.length, 3);
    assert.equal(log.find(/^reload refused/).length, 1, 'the same invalid text is refused once');
    await replace(valid('g'));
    await waitUntil('the fixed file applied', () => daemon.applied.length === 4);
  } finally {
    watcher.close();
    await cleanup();
  }
});

test('hashToNumber keeps 48 bits exactly', () => {
  assert.equal(hashToNumber('ffffffffffff0000'), 2 ** 48 - 1);
  assert.equal(hashToNumber('000000000001ffff'), 1);
  assert.ok(Number.isSafeInteger(hashToNumber('f'.repeat(64))));
});
