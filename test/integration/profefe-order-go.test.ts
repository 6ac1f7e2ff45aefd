/**
 * A real Go target profiled for CPU and heap on one schedule: each CPU profile
 * is dated at the start of its window and ends after the heap profiles of the
 * same tick, yet profefe gets one service's profiles in the order it files
 * them, so its queries by type and label find every one.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon.js';
import { silentLogger } from '../../src/log.js';
import { skipWithoutGo, startGoTarget } from '../helpers/go-target.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';

const skip = await skipWithoutGo();

void test('one service\'s CPU and heap profiles reach profefe in the order profefe files them', { skip, timeout: 90_000 }, async () => {
  const go = await startGoTarget({ host: '127.0.0.61' });
  const profefe = await startProfefeFake();
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-order-'));
  const daemon = new Daemon({ logger: silentLogger() });
  try {
    await daemon.apply(
      parseConfig(
        `
scrape: {interval: 3s, timeout: 5s}
profiles:
  cpu: {path: /debug/pprof/profile}
  heap: {path: /debug/pprof/heap}
  goroutine: {path: /debug/pprof/goroutine}
discovery:
  - static:
      service: billing
      labels: {team: core}
      targets: [${go.address}]
repositories:
  - profefe: {url: "${profefe.url}"}
server: {listen: "127.0.0.1:0"}
state_dir: ${dir}/state
`,
        'order.yaml',
        { baseDir: dir, env: {} },
      ),
    );
    // four ticks: the CPU profile (2 s of each 3) of each tick is queued after that tick's heap and goroutine
    await profefe.waitForProfiles(12, 40_000);
    const got = profefe.received.slice();
    assert.deepEqual(profefe.rejected, []);
    assert.ok(got.filter((r) => r.type === 'cpu').length >= 3, got.map((r) => r.type).join(' '));
    assert.deepEqual(profefe.outOfOrder(), [], 'arrivals in the order profefe files them');
    for (let i = 1; i < got.length; i++) assert.ok(got[i - 1]!.indexedAt <= got[i]!.indexedAt, `arrival ${i} is dated before arrival ${i - 1}`);
    const window = { service: 'billing', from: got[0]!.indexedAt, to: got.at(-1)!.indexedAt };
    for (const type of ['cpu', 'heap', 'goroutine'] as const) {
      const all = got.filter((r) => r.type === type).length;
      assert.equal(profefe.find({ ...window, type, labels: { team: 'core' } }).length, all, `a ${type} query by label finds every ${type} profile`);
    }
  } finally {
    await daemon.stop();
    await profefe.close();
    await go.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
