import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tuneGc } from '../../src/gc-tuning.js';

test('tuneGc leaves a growing factor the operator gave alone', () => {
  assert.equal(tuneGc(['--liftoff-only', '--heap-growing-percent=80'], ''), false);
  assert.equal(tuneGc([], '--max-semi-space-size=2 --heap_growing_percent=80'), false);
  assert.equal(tuneGc(['--liftoff-only'], '--max-semi-space-size=2'), true);
});
