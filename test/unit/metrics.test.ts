import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics } from '../../src/metrics.js';
import { exposedValue } from '../helpers/metrics.js';

test('schedule lateness is a histogram (its buckets add up across shards), from 1 ms to 60 s', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  metrics.lateness.observe(0.0004);
  metrics.lateness.observe(2);
  metrics.lateness.observe(90);
  const text = await metrics.registry.metrics();
  const name = 'pprof_scraper_schedule_lateness_seconds';
  assert.match(text, new RegExp(`^# TYPE ${name} histogram$`, 'm'));
  assert.equal(exposedValue(text, `${name}_bucket`, { le: '0.001' }), 1);
  assert.equal(exposedValue(text, `${name}_bucket`, { le: '2.5' }), 2);
  assert.equal(exposedValue(text, `${name}_bucket`, { le: '60' }), 2);
  assert.equal(exposedValue(text, `${name}_bucket`, { le: '+Inf' }), 3);
  assert.equal(exposedValue(text, `${name}_count`), 3);
  assert.equal(exposedValue(text, `${name}_sum`), 92.0004);
  assert.doesNotMatch(text, new RegExp(`^${name}\\{quantile=`, 'm'));
});
