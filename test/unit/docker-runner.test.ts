import assert from 'node:assert/strict';
import {test} from 'node:test';
import type {Provider} from '../../src/discovery/index.js';
import {ProviderRunner} from '../../src/discovery/index.js';
import {silentLogger} from '../../src/log.js';
import {createMetrics} from '../../src/metrics.js';
import type {Discovered} from '../../src/targets/index.js';
import {metricSum} from '../helpers/metrics.js';
import {waitUntil} from '../helpers/wait.js';

// Docker events arrive at any moment, also while a refresh is running: a
// container that starts just after ContainerList answered must not wait for
// the next full refresh (minutes away) to become a target.
test('an event that arrives while a refresh runs brings another refresh, not a wait for the interval', async () => {
  let containers: Discovered[] = [];
  let refreshes = 0;
  let inRefresh: (() => void) | undefined;
  let notify: (() => void) | undefined;
  const provider: Provider = {
    kind: 'docker',
    source: 0,
    refreshInterval: 3_600_000,
    async refresh() {
      refreshes++;
      const answer = containers;
      // the answer is taken; the event below comes after it
      await new Promise<void>((resolve) => {
        inRefresh = resolve;
      });
      return answer;
    },
    async watch(signal, changed) {
      notify = changed;
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), {once: true}));
    },
  };
  const runner = new ProviderRunner(provider, {logger: silentLogger(), metrics: createMetrics({defaultMetrics: false}), onChange: () => undefined});
  try {
    await waitUntil('the first refresh', () => refreshes === 1 && inRefresh !== undefined);
    inRefresh!();
    await runner.firstTry();
    assert.deepEqual(runner.state.found, []);

    notify!();
    await waitUntil('the second refresh', () => refreshes === 2);
    containers = [{address: '127.0.0.5', labels: {container_name: 'late'}}];
    notify!();
    // the debounce (100 ms) fires while this refresh still holds its (stale) answer;
    // a sleep, since nothing outside the runner shows that it fired
    await new Promise((r) => setTimeout(r, 300));
    inRefresh!();
    await waitUntil('a refresh after the event', () => refreshes === 3, {timeoutMs: 2000});
    inRefresh!();
    await waitUntil('the late container', () => runner.state.found?.length === 1, {timeoutMs: 2000});
  } finally {
    const stopping = runner.stop();
    inRefresh?.();
    await stopping;
  }
});

// A list that is slow to answer (an engine busy starting containers) must not
// hold back the one an event asks for: the change shows after one list, not two.
test('an event while a refresh waits for its answer starts the next at once; the stale answer, coming last, is not published', async () => {
  const late: Discovered = {address: '127.0.0.6', labels: {container_name: 'late'}};
  let containers: Discovered[] = [];
  const answer: (() => void)[] = [];
  let notify: (() => void) | undefined;
  let changes = 0;
  const provider: Provider = {
    kind: 'docker',
    source: 0,
    refreshInterval: 3_600_000,
    async refresh() {
      const found = containers;
      await new Promise<void>((resolve) => answer.push(resolve));
      return found;
    },
    async watch(signal, changed) {
      notify = changed;
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), {once: true}));
    },
  };
  const metrics = createMetrics({defaultMetrics: false});
  const runner = new ProviderRunner(provider, {logger: silentLogger(), metrics, onChange: () => changes++});
  try {
    await waitUntil('the first refresh', () => answer.length === 1);
    answer[0]!();
    await runner.firstTry();
    notify!();
    await waitUntil('the second refresh', () => answer.length === 2);
    containers = [late];
    notify!();
    await waitUntil('a third refresh while the second still waits for its answer', () => answer.length === 3);
    answer[2]!();
    await waitUntil('the late container, from the third refresh', () => runner.state.found?.length === 1);
    answer[1]!();
    await waitUntil('the second refresh answered', async () => (await metricSum(metrics.discoveryRefreshes, {result: 'success'})) === 3);
    assert.deepEqual(runner.state.found, [late]);
    assert.equal(changes, 2);
    assert.equal(answer.length, 3);
  } finally {
    const stopping = runner.stop();
    for (const a of answer) a();
    await stopping;
  }
});
