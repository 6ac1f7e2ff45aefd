import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Provider } from '../../src/discovery/index.js';
import { ProviderRunner } from '../../src/discovery/index.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { settle } from '../helpers/fake-clock.js';

test('a refresh interval beyond the timer limit (52w) idles: no TimeoutOverflowWarning, no second refresh', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  let refreshes = 0;
  const provider: Provider = {
    kind: 'static',
    source: 0,
    refreshInterval: 52 * 7 * 86_400_000,
    refresh: () => {
      refreshes++;
      return Promise.resolve([]);
    },
  };
  const runner = new ProviderRunner(provider, { logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }), onChange: () => undefined });
  try {
    await runner.firstTry();
    // the wait is armed after the first refresh; Node warns on the next tick
    await settle();
    assert.deepEqual(warnings.filter((w) => w.name === 'TimeoutOverflowWarning').map((w) => w.message), []);
    assert.equal(refreshes, 1);
  } finally {
    await runner.stop();
    process.off('warning', onWarning);
  }
});
