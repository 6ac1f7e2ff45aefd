import assert from 'node:assert/strict';
import {getEventListeners} from 'node:events';
import {after, test} from 'node:test';
import {sendWithTimeout} from '../../src/delivery/timeout.js';
import {ScriptedRepository} from '../helpers/delivery.js';
import {taggedProfile} from '../helpers/profiles.js';
import {waitUntil} from '../helpers/wait.js';

// the timers of a send do not hold the process open (a daemon has its listener for that)
const keepAlive = setInterval(() => undefined, 1000);
after(() => clearInterval(keepAlive));

const hang = (_p: unknown, _c: number, signal: AbortSignal): Promise<{status: 'retryable'; error: string}> =>
  new Promise((resolve) => signal.addEventListener('abort', () => resolve({status: 'retryable', error: `aborted: ${String((signal.reason as Error).name)}`})));

void test('a send that outlasts its timeout is cut off and retryable, saying so', async () => {
  const repo = new ScriptedRepository('r', hang);
  const t = Date.now();
  const r = await sendWithTimeout(repo, taggedProfile(1), 100, new AbortController().signal);
  assert.ok(Date.now() - t >= 95);
  assert.deepEqual(r, {status: 'retryable', error: 'no answer within the send timeout (100 ms): aborted: TimeoutError'});
});

void test('aborting the queue\'s signal cuts a send off, and is not called a timeout', async () => {
  const repo = new ScriptedRepository('r', hang);
  const parent = new AbortController();
  void waitUntil('the send in flight', () => repo.calls.length === 1).then(() => parent.abort(new Error('closing')));
  const r = await sendWithTimeout(repo, taggedProfile(1), 10_000, parent.signal);
  assert.deepEqual(r, {status: 'retryable', error: 'aborted: Error'});
});

void test('sends leave nothing attached to the long-lived signal', async () => {
  const repo = new ScriptedRepository('r');
  const parent = new AbortController();
  for (let i = 0; i < 1000; i++) await sendWithTimeout(repo, taggedProfile(i), 10_000, parent.signal);
  assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
});
