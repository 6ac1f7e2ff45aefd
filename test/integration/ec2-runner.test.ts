/**
 * The EC2 provider inside the daemon's loops: keep-last-good on a failed
 * refresh (403, 503), one log line per failure streak, metrics, recovery,
 * and targets that leave while the others keep their schedule.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import type { LoadedConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon.js';
import { DiscoveryManager } from '../../src/discovery/index.js';
import { createMetrics } from '../../src/metrics.js';
import { Scheduler } from '../../src/scrape/scheduler.js';
import { buildTargets } from '../../src/targets/index.js';
import { FAILURES, fleet, startEc2Fake, useFakeAwsEnv } from '../helpers/ec2-fake.js';
import type { Ec2Fake, Failure } from '../helpers/ec2-fake.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogger } from '../helpers/log.js';
import { metricSum } from '../helpers/metrics.js';
import { waitUntil } from '../helpers/wait.js';

let fake: Ec2Fake;
let restoreEnv: () => void;
let dir: string;

before(async () => {
  restoreEnv = useFakeAwsEnv();
  fake = await startEc2Fake();
  dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-ec2-'));
});

after(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
  restoreEnv();
});

beforeEach(() => {
  fake.clearFailures();
  fake.requests.length = 0;
  fake.setInstances('us-east-1', fleet(3));
});

function load(refresh = '100ms'): LoadedConfig {
  const text = `
scrape: {interval: 60s}
profiles:
  cpu: {path: /debug/pprof/profile, seconds: 10}
  heap: {path: /debug/pprof/heap}
discovery:
  - static: {targets: ["127.0.0.1:6060"], service: fixed}
  - ec2:
      region: us-east-1
      endpoint: ${fake.url}
      filters: {"tag:pprof": "true"}
      refresh: ${refresh}
repositories:
  - directory: {path: ${join(dir, 'profiles')}}
state_dir: ${join(dir, 'state')}
server: {listen: "127.0.0.1:0"}
`;
  return parseConfig(text, 'test.yaml', { baseDir: dir });
}

const ec2Ids = (manager: DiscoveryManager): string[] | undefined =>
  manager
    .groups()
    .find((g) => g.provider === 'ec2')
    ?.targets.map((d) => d.labels['instance_id'] ?? '?');

for (const [name, failure, code] of [
  ['403 UnauthorizedOperation', FAILURES.unauthorized, 'UnauthorizedOperation'],
  ['503 RequestLimitExceeded', FAILURES.throttled, 'RequestLimitExceeded'],
] as [string, Failure, string][]) {
  test(`${name}: the last good targets stay, one log line per failure streak, counted; then recovery`, async () => {
    const { logger, records: lines } = captureLogger();
    const metrics = createMetrics({ defaultMetrics: false });
    let changes = 0;
    const manager = new DiscoveryManager({ logger, metrics, onChange: () => changes++ });
    try {
      await manager.apply(load().config.discovery);
      await manager.firstRefresh();
      const good = ec2Ids(manager);
      assert.equal(good?.length, 3);
      const changesBefore = changes;

      fake.fail(failure, { times: Infinity });
      await waitUntil('two failed refreshes', async () => (await metricSum(metrics.discoveryFailures, { provider: 'ec2' })) >= 2, { timeoutMs: 30_000 });
      assert.deepEqual(ec2Ids(manager), good, 'the last good targets stay');
      assert.equal(changes, changesBefore, 'a failed refresh publishes nothing');
      const [problem] = manager.problems();
      assert.equal(problem?.provider, 'ec2');
      assert.equal(problem?.source, 1);
      assert.match(problem?.error ?? '', new RegExp(`^discovery\\[1\\]\\.ec2: ${code} calling DescribeInstances in us-east-1`));
      const failed = lines.filter((l) => l['msg'] === 'discovery failed; the last good targets stay');
      assert.equal(failed.length, 1, 'logged once per failure streak');
      assert.equal(failed[0]?.['code'], code);
      assert.equal(failed[0]?.['kept_targets'], 3);
      assert.equal(await metricSum(metrics.discoveryRefreshes, { provider: 'ec2', result: 'failure' }), await metricSum(metrics.discoveryFailures, { provider: 'ec2' }));

      const left = fleet(3).slice(1);
      fake.setInstances('us-east-1', left);
      fake.clearFailures();
      await waitUntil('recovery', () => ec2Ids(manager)?.length === 2 && manager.problems().length === 0, { timeoutMs: 30_000 });
      assert.deepEqual(ec2Ids(manager), left.map((i) => i.id));
      assert.equal(lines.filter((l) => l['msg'] === 'discovery recovered').length, 1);

      // a new streak is logged again
      fake.fail(FAILURES.malformed, { times: Infinity });
      await waitUntil('a new failure streak', () => lines.filter((l) => l['msg'] === 'discovery failed; the last good targets stay').length === 2, { timeoutMs: 30_000 });
      assert.equal(lines.filter((l) => l['msg'] === 'discovery failed; the last good targets stay').at(-1)?.['code'], 'MalformedResponse');
      assert.deepEqual(ec2Ids(manager), left.map((i) => i.id));
    } finally {
      fake.clearFailures();
      await manager.stop();
    }
  });
}

test('an instance removed between refreshes: its loops stop, the others keep their planned ticks', async () => {
  const { logger } = captureLogger();
  const clock = new FakeClock(Date.now());
  const config = load().config;
  const scheduler = new Scheduler({ concurrency: 4, clock }, { run: () => Promise.resolve() });
  const manager = new DiscoveryManager({
    logger,
    metrics: createMetrics({ defaultMetrics: false }),
    onChange: () => scheduler.update(buildTargets(config, manager.groups()).targets),
  });
  try {
    await manager.apply(config.discovery);
    await manager.firstRefresh();
    const targets = buildTargets(config, manager.groups()).targets;
    assert.equal(scheduler.size, 2 * 4, 'one static and three ec2 targets, cpu and heap each');
    const planned = new Map(targets.flatMap((t) => t.profiles.map((p) => [`${t.id}/${p.type}`, scheduler.nextTickOf(`${t.id}/${p.type}`)])));
    const gone = targets.find((t) => t.labels['instance_id'] === fleet(3)[1]?.id);
    assert.ok(gone);

    fake.setInstances('us-east-1', fleet(3).filter((i) => i.id !== gone.labels['instance_id']));
    await waitUntil('the loops of the removed instance to stop', () => scheduler.size === 2 * 3, { timeoutMs: 30_000 });
    for (const [key, at] of planned) {
      if (key.startsWith(`${gone.id}/`)) assert.equal(scheduler.nextTickOf(key), undefined, `${key} stopped`);
      else assert.equal(scheduler.nextTickOf(key), at, `${key} keeps its planned tick`);
    }
  } finally {
    await manager.stop();
    scheduler.stop();
  }
});

test('the daemon: a removed instance leaves /targets, the other loops are neither added nor changed', async () => {
  const { logger, records: lines } = captureLogger();
  const daemon = new Daemon({ logger, clock: new FakeClock(Date.now()), metrics: createMetrics({ defaultMetrics: false }) });
  try {
    await daemon.apply(load());
    const ec2Targets = (): string[] =>
      daemon
        .report()
        .targets.filter((t) => t.provider === 'ec2')
        .map((t) => t.labels['instance_id'] ?? '?');
    await waitUntil('three ec2 targets', () => ec2Targets().length === 3, { timeoutMs: 30_000 });
    const removed = fleet(3)[0]!.id;
    const before = daemon.report().targets;
    const removedId = before.find((t) => t.labels['instance_id'] === removed)?.id;
    const updatesBefore = lines.filter((l) => l['msg'] === 'targets updated').length;

    fake.setInstances('us-east-1', fleet(3).slice(1));
    await waitUntil('the removed instance to leave', () => ec2Targets().length === 2, { timeoutMs: 30_000 });
    assert.ok(!ec2Targets().includes(removed));
    assert.deepEqual(
      daemon.report().targets.map((t) => t.id),
      before.map((t) => t.id).filter((id) => id !== removedId),
    );
    const update = lines.filter((l) => l['msg'] === 'targets updated').slice(updatesBefore);
    assert.equal(update.length, 1);
    assert.deepEqual([update[0]?.['loops_added'], update[0]?.['loops_removed'], update[0]?.['loops_changed']], [0, 2, 0]);
  } finally {
    await daemon.stop({ scrapeDeadlineMs: 0, sendDeadlineMs: 0 });
  }
});
