/**
 * Durations past setTimeout's limit (2^31-1 ms, about 24.8 days) fire at once
 * with a TimeoutOverflowWarning. Where a config value or a server's answer
 * sets a wait, it must either be bounded or wait as long as it says.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallSignal } from '../../src/abort.js';
import { nextDelay, RETRY_AFTER_CEILING_MS } from '../../src/repositories/retry.js';

void test('a timeout longer than setTimeout takes does not abort the call at once', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.name);
  process.on('warning', onWarning);
  const call = new CallSignal(new AbortController().signal, 52 * 7 * 86_400_000);
  try {
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setTimeout(resolve, 5));
    assert.equal(call.signal.aborted, false, 'a 52-week timeout fired after a few ms');
    assert.deepEqual(warnings, []);
  } finally {
    call.dispose();
    process.off('warning', onWarning);
  }
});

void test("a repository's Retry-After is honoured up to 1 h, or max_backoff when longer", () => {
  const policy = { initialMs: 1000, maxMs: 120_000 };
  const retry = (ms: number) => nextDelay({ status: 'retryable', error: '503', retryAfterMs: ms }, policy, 0);
  assert.equal(retry(30_000), 30_000);
  assert.equal(retry(600_000), 600_000, 'longer than max_backoff, within the ceiling: as the server said');
  assert.equal(retry(10 * 365 * 86_400_000), RETRY_AFTER_CEILING_MS);
  assert.equal(retry(Number.POSITIVE_INFINITY), 0);
  assert.equal(nextDelay({ status: 'retryable', error: '503', retryAfterMs: 10 * 86_400_000 }, { initialMs: 1000, maxMs: 86_400_000 }, 0), 86_400_000);
});
