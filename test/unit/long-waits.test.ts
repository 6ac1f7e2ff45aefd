/**
 * Durations past setTimeout's limit (2^31-1 ms, about 24.8 days) fire at once
 * with a TimeoutOverflowWarning. Where a config value sets a wait, it must
 * either be bounded or wait as long as it says.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallSignal } from '../../src/abort.js';

void test('a timeout longer than setTimeout takes does not abort the call at once', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.name);
  process.on('warning', onWarning);
  const call = new CallSignal(new AbortController().signal, 52 * 7 * 86_400_000);
  try {
    await new Promise<void>((resolve) => setImmediate(resolve));
    // a sleep on purpose: the timeout must not have fired by now
    await new Promise<void>((resolve) => setTimeout(resolve, 5));
    assert.equal(call.signal.aborted, false, 'a 52-week timeout fired after a few ms');
    assert.deepEqual(warnings, []);
  } finally {
    call.dispose();
    process.off('warning', onWarning);
  }
});
