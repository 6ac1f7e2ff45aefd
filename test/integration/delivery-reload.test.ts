/**
 * The daemon's durable delivery across a reload: a repository whose
 * settings change is swapped while it is down, and every profile its queue
 * held, and every one taken since, arrives once it is back.
 */
import assert from 'node:assert/strict';
import {readdir} from 'node:fs/promises';
import {join} from 'node:path';
import {test} from 'node:test';
import {parseConfig} from '../../src/config/index.js';
import {Daemon} from '../../src/daemon.js';
import {silentLogger} from '../../src/log.js';
import {createMetrics} from '../../src/metrics.js';
import {startUniqueProfileTarget, tempDir, timeNanosOf} from '../helpers/delivery.js';
import {startProfefeFake} from '../helpers/profefe-fake.js';
import {waitUntil} from '../helpers/wait.js';

void test('a repository swapped by a reload during its outage loses nothing', {timeout: 60_000}, async () => {
  const target = await startUniqueProfileTarget();
  const profefe = await startProfefeFake();
  const {dir, cleanup} = await tempDir('pprof-reload-');
  let isDown = true;
  profefe.setFailure(() => (isDown ? {status: 503, body: 'unavailable'} : undefined));
  const config = (timeout: string, extra = ''): string => `
scrape: {interval: 1s, timeout: 5s}
profiles:
  heap: {path: /debug/pprof/heap}
discovery:
  - static: {service: reload-test, targets: ["${target.address}"]}
repositories:
  - profefe: {url: "${profefe.url}", timeout: ${timeout}, retry: {initial_backoff: 50ms, max_backoff: 200ms}}
${extra}
server: {listen: "127.0.0.1:0"}
state_dir: ${JSON.stringify(join(dir, 'state'))}
`;
  const daemon = new Daemon({logger: silentLogger(), metrics: createMetrics({defaultMetrics: false})});
  try {
    await daemon.apply(parseConfig(config('5s'), 'a.yaml', {baseDir: dir}));
    await waitUntil('five scrapes before the reload', () => target.served.length >= 5);
    const report = await daemon.apply(parseConfig(config('6s', `  - directory: {path: ${JSON.stringify(join(dir, 'files'))}}`), 'b.yaml', {baseDir: dir}));
    assert.deepEqual(report.repositories.swapped, ['profefe']);
    assert.deepEqual(report.repositories.added, ['directory']);
    const servedAtReload = target.served.length;
    await waitUntil('scrapes after the reload', () => target.served.length >= servedAtReload + 3);
    isDown = false;
    const upAt = Date.now();
    const expected = target.served.filter((s) => s.at < upAt - 100).map((s) => s.timeNanos);
    await waitUntil(`all ${expected.length} profiles at the swapped repository`, async () => {
      const got = new Set(await Promise.all(profefe.received.map((r) => timeNanosOf(r.body))));
      return expected.every((t) => got.has(t));
    }, {timeoutMs: 20_000});
    await daemon.stop({scrapeDeadlineMs: 1000, sendDeadlineMs: 1000});
    const times = await Promise.all(profefe.received.map((r) => timeNanosOf(r.body)));
    assert.equal(new Set(times).size, times.length, 'none twice');
    // the directory repository, added by the reload, goes through its own queue
    const files = await readdir(join(dir, 'files', 'reload-test', 'heap'));
    assert.ok(files.filter((f) => f.endsWith('.pb.gz')).length >= 3);
    assert.deepEqual((await readdir(join(dir, 'state', 'queues'))).sort(), ['.spool', 'directory', 'profefe']);
  } finally {
    await daemon.stop({scrapeDeadlineMs: 0, sendDeadlineMs: 0});
    await target.close();
    await profefe.close();
    await cleanup();
  }
});
