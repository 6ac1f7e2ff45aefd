/**
 * A repository outage followed by a drain must not pile abort listeners on
 * the queue's signal: every send runs under it, up to 32 at once, and Node
 * warns (MaxListenersExceededWarning) past 10 listeners on one signal.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { CallSignal } from '../../src/abort.js';
import { createMetrics } from '../../src/metrics.js';
import { createProfefeRepository } from '../../src/repositories/profefe.js';
import { openSpool } from '../../src/delivery/spool.js';
import { settings, tempDir } from '../helpers/delivery.js';
import { captureLogger } from '../helpers/log.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import { fixture, taggedProfile } from '../helpers/profiles.js';
import { waitUntil } from '../helpers/wait.js';

const heap = fixture('heap');

void test('calls under one signal share one listener on it, and leave none behind', () => {
  const parent = new AbortController();
  const calls = Array.from({ length: 50 }, () => new CallSignal(parent.signal, 60_000));
  assert.equal(getEventListeners(parent.signal, 'abort').length, 1);
  for (const c of calls.slice(0, 49)) c.dispose();
  assert.equal(getEventListeners(parent.signal, 'abort').length, 1, 'one call is still running');
  parent.abort(new Error('stopping'));
  assert.equal((calls[49]?.signal.reason as Error).message, 'stopping', 'a running call aborts with the parent');
  assert.equal(calls[0]?.signal.aborted, false, 'a finished call is left alone');
  calls[49]?.dispose();
  assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
});

void test('a long outage and the drain after it add no abort listeners and no warning', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  const fake = await startProfefeFake();
  const { dir, cleanup } = await tempDir();
  const { logger } = captureLogger();
  const spool = await openSpool(dir, { logger, metrics: createMetrics({ defaultMetrics: false }), ackFlushMs: 10 });
  try {
    const repo = await createProfefeRepository('profefe', { url: fake.url, headers: {} } as never);
    // the production parallelism (repositories/factory.ts), fast retries
    const handle = await spool.attach(repo, settings({ parallelism: 32, policy: { initialMs: 1, maxMs: 5 } }));
    spool.activate(new Map([['profefe', handle]]));
    const listeners = (): number => getEventListeners(handle.signal, 'abort').length;
    let peak = 0;
    let outageCalls = 0;
    fake.setFailure(() => {
      peak = Math.max(peak, listeners());
      outageCalls++;
      return { status: 503, body: 'down' };
    });
    for (let i = 0; i < 80; i++) await spool.submit(taggedProfile(i, 0, { data: heap }));
    await waitUntil('sixty failed attempts', () => outageCalls >= 60);
    fake.setFailure(() => {
      peak = Math.max(peak, listeners());
      return undefined;
    });
    await fake.waitForProfiles(80);
    await waitUntil('an empty, idle queue', () => spool.queue('profefe')?.stats().length === 0 && handle.inFlight.size === 0);
    assert.ok(peak <= 1, `${peak} abort listeners on the queue's signal while sending`);
    assert.equal(listeners(), 0, 'listeners left on the queue signal once idle');
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
    await spool.close(100);
    await fake.close();
    await cleanup();
  }
});
