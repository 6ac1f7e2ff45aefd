import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { Scheduler } from '../../src/scrape/scheduler.js';
import type { ScrapeTask } from '../../src/scrape/scheduler.js';
import { buildTargets } from '../../src/targets/index.js';
import type { Target } from '../../src/targets/index.js';
import { FakeClock, settle } from '../helpers/fake-clock.js';

const ADDRESS = '10.0.0.7:6060';

function targetOf(yaml: string): Target {
  const config = parseConfig(`${yaml}repositories:\n  - directory: {path: ./unused}\n`, 'trace.yaml', { baseDir: '.', env: {} }).config;
  const built = buildTargets(config, [{ source: 0, provider: 'static', targets: [{ address: ADDRESS, labels: {} }] }]);
  assert.deepEqual(built.dropped, []);
  assert.ok(built.targets[0]);
  return built.targets[0];
}

function urls(t: Target): Record<string, string> {
  return Object.fromEntries(t.profiles.map((p) => [p.type, p.url]));
}

describe('the trace type in the config', () => {
  test('is a built-in type, off by default, at /debug/pprof/trace', () => {
    const config = parseConfig('repositories:\n  - directory: {path: ./unused}\n', 'trace.yaml', { baseDir: '.', env: {} }).config;
    assert.deepEqual(config.profiles['trace'], { path: '/debug/pprof/trace', enabled: false, delta: false });
    const t = targetOf('discovery:\n  - static: {targets: [10.0.0.7]}\n');
    assert.ok(!t.profiles.some((p) => p.type === 'trace'), 'not taken unless named');
  });

  test('a target that names it takes a 1 s trace (Go\'s default), whatever its interval', () => {
    const t = targetOf('scrape: {interval: 60s}\ndiscovery:\n  - static: {targets: [10.0.0.7], profiles: [cpu, trace]}\n');
    assert.deepEqual(urls(t), {
      cpu: `http://${ADDRESS}/debug/pprof/profile?seconds=55`,
      trace: `http://${ADDRESS}/debug/pprof/trace?seconds=1`,
    });
    assert.equal(t.profiles.find((p) => p.type === 'trace')?.seconds, 1);
  });

  test('in a profiles: map without seconds it takes 1 s; with seconds, those; a path prefix applies', () => {
    assert.equal(urls(targetOf('scrape: {interval: 5m}\nprofiles: {trace: {path: /debug/pprof/trace}}\ndiscovery:\n  - static: {targets: [10.0.0.7]}\n'))['trace'], `http://${ADDRESS}/debug/pprof/trace?seconds=1`);
    assert.equal(
      urls(targetOf('profiles: {trace: {path: /debug/pprof/trace, seconds: 5}}\ndiscovery:\n  - static: {targets: [10.0.0.7], path: /internal/pprof}\n'))['trace'],
      `http://${ADDRESS}/internal/pprof/trace?seconds=5`,
    );
  });
});

describe('scheduling traces', () => {
  test('a trace runs beside its target\'s CPU profile (Go allows both at once), CPU-style types still wait for each other', async () => {
    const clock = new FakeClock();
    const pending: { key: string; finish: () => void }[] = [];
    const run = (task: ScrapeTask): Promise<void> => new Promise((resolve) => pending.push({ key: task.key, finish: resolve }));
    const s = new Scheduler({ concurrency: 10, clock }, { run });
    const profile = (type: string) => ({ type, url: `http://a/${type}`, seconds: 1, delta: false });
    s.update([
      {
        id: 'a',
        provider: 'static',
        source: 0,
        service: 'svc',
        address: 'a:6060',
        scheme: 'http',
        labels: {},
        timing: { kind: 'interval', ms: 1_000 },
        profiles: [profile('cpu'), profile('fgprof'), profile('trace')],
      },
    ]);
    await clock.advance(1_000);
    const running = pending.map((p) => p.key).sort();
    assert.ok(running.includes('a/trace'), `the trace waits for the CPU profile: ${running.join(' ')}`);
    assert.equal(running.filter((k) => k === 'a/cpu' || k === 'a/fgprof').length, 1, `two CPU-style profiles at once: ${running.join(' ')}`);
    for (const p of pending.splice(0)) p.finish();
    await settle();
    s.stop();
    for (const p of pending.splice(0)) p.finish();
  });
});
