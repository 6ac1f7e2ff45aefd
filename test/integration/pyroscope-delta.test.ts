/**
 * The daemon scrapes a real Go program's allocs profile and ships it to a
 * Pyroscope (the loopback fake, which checks the push contract) and, as
 * scraped, to a directory. Each delta Pyroscope gets must be exactly the
 * difference of two consecutive raw scrapes in the directory.
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
import {expectedAllocsDelta, rawScrapes, sampleTypes, valuesByStack} from '../helpers/pprof-stacks.js';
import {startPyroscopeFake} from '../helpers/pyroscope-fake.js';

const skip = await skipWithoutGo();

void test('Pyroscope gets deltas of a real Go allocs profile equal to the difference of consecutive raw scrapes', {skip, timeout: 120_000}, async () => {
  const target = await startGoTarget({host: '127.0.0.5'});
  const pyroscope = await startPyroscopeFake({tenant: 'tenant-1'});
  const {dir, cleanup} = await tempDir('pprof-pyroscope-');
  const raw = join(dir, 'raw');
  const yaml = `
scrape: {interval: 1s, timeout: 5s}
profiles:
  allocs: {path: /debug/pprof/allocs}
discovery:
  - static: {service: go-target, targets: ["${target.address}"], labels: {team: core}}
repositories:
  - pyroscope: {url: "${pyroscope.url}", tenant: tenant-1}
  - directory: {path: ${JSON.stringify(raw)}}
server: {listen: "127.0.0.1:0"}
state_dir: ${JSON.stringify(join(dir, 'state'))}
`;
  const daemon = new Daemon({logger: silentLogger(), metrics: createMetrics({defaultMetrics: false})});
  try {
    await daemon.apply(parseConfig(yaml, 'test.yaml', {baseDir: dir}));
    const deltas = await pyroscope.waitFor(3, 30_000);
    await daemon.stop({scrapeDeadlineMs: 2000, sendDeadlineMs: 2000});

    // the raw scrapes, by TimeNanos
    const scrapes = await rawScrapes(raw, 'go-target', 'allocs');
    const times = [...scrapes.keys()].sort((a, b) => (a < b ? -1 : 1));
    assert.ok(times.length >= 4, `${times.length} raw scrapes`);
    assert.equal(pyroscope.rejected.length, 0, JSON.stringify(pyroscope.rejected));

    for (const d of deltas) {
      assert.equal(d.label('__name__'), 'memory');
      assert.equal(d.label('service_name'), 'go-target');
      assert.equal(d.label('__delta__'), 'false');
      assert.equal(d.label('team'), 'core');
      assert.equal(d.label('instance'), target.address);
      assert.equal(d.headers['x-scope-orgid'], 'tenant-1');
      const newer = BigInt(d.profile.timeNanos);
      const older = newer - BigInt(d.profile.durationNanos);
      const i = times.indexOf(newer);
      assert.ok(i > 0, 'the delta carries the newer scrape\'s time, and an older scrape exists');
      assert.equal(times[i - 1], older, 'the delta covers the time since the scrape just before');
      const after = valuesByStack(scrapes.get(newer)!.profile);
      const want = expectedAllocsDelta(valuesByStack(scrapes.get(older)!.profile), after);
      const got = valuesByStack(d.profile);
      const types = sampleTypes(d.profile);
      assert.deepEqual(types, ['alloc_objects', 'alloc_space', 'inuse_objects', 'inuse_space']);
      let changed = 0;
      for (const stack of after.keys()) if (!want.has(stack)) assert.equal(got.has(stack), false, `an unchanged stack is left out: ${stack}`);
      for (const [stack, row] of want) {
        if (row[0] !== 0) changed++;
        assert.deepEqual(got.get(stack), row, stack);
      }
      for (const stack of got.keys()) assert.ok(after.has(stack), `every stack of the delta is in the newer scrape: ${stack}`);
      assert.ok(changed > 0, 'the target allocated between the two scrapes');
    }
    // the first scrape only set the baseline
    assert.ok(!deltas.some((d) => BigInt(d.profile.timeNanos) === times[0]));
  } finally {
    await daemon.stop({scrapeDeadlineMs: 0, sendDeadlineMs: 0});
    await target.stop();
    await pyroscope.close();
    await cleanup();
  }
});
