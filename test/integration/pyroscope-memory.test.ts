/**
 * The daemon scrapes a real Go program's heap and allocs profiles: Pyroscope's
 * `memory` series of the target must get one of them, from the first scrape
 * on, so no stretch of time is counted twice.
 */
import assert from 'node:assert/strict';
import {join} from 'node:path';
import {test} from 'node:test';
import {parseConfig} from '../../src/config/index.js';
import {Daemon} from '../../src/daemon.js';
import {silentLogger} from '../../src/log.js';
import {createMetrics} from '../../src/metrics.js';
import {tempDir} from '../helpers/delivery.js';
import {skipWithoutGo, startGoTarget} from '../helpers/go-target.js';
import {startPyroscopeFake} from '../helpers/pyroscope-fake.js';

const skip = await skipWithoutGo();

void test('a target scraped for heap and allocs reaches Pyroscope\'s memory series once: no two memory profiles cover the same time', {skip, timeout: 120_000}, async () => {
  const target = await startGoTarget({host: '127.0.0.6'});
  const pyroscope = await startPyroscopeFake();
  const {dir, cleanup} = await tempDir('pprof-pyroscope-memory-');
  const yaml = `
scrape: {interval: 1s, timeout: 5s}
profiles:
  heap: {path: /debug/pprof/heap}
  allocs: {path: /debug/pprof/allocs}
discovery:
  - static: {service: go-target, targets: ["${target.address}"]}
repositories:
  - pyroscope: {url: "${pyroscope.url}"}
server: {listen: "127.0.0.1:0"}
state_dir: ${JSON.stringify(join(dir, 'state'))}
`;
  const daemon = new Daemon({logger: silentLogger(), metrics: createMetrics({defaultMetrics: false})});
  try {
    await daemon.apply(parseConfig(yaml, 'test.yaml', {baseDir: dir}));
    await pyroscope.waitFor(4, 30_000);
    await daemon.stop({scrapeDeadlineMs: 2000, sendDeadlineMs: 2000});
    const memory = pyroscope.received.filter((s) => s.label('__name__') === 'memory');
    assert.ok(memory.length >= 4);
    const windows = memory.map((s) => [BigInt(s.profile.timeNanos) - BigInt(s.profile.durationNanos), BigInt(s.profile.timeNanos)] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (let i = 1; i < windows.length; i++) {
      assert.ok(windows[i - 1]![1] <= windows[i]![0], `memory profiles ${i - 1} and ${i} cover the same time: counted twice (${windows.map((w) => w.join('..')).join(', ')})`);
    }
  } finally {
    await daemon.stop({scrapeDeadlineMs: 0, sendDeadlineMs: 0});
    await target.stop();
    await pyroscope.close();
    await cleanup();
  }
});
