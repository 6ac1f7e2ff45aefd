import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics } from '../../src/metrics.js';
import type { ScrapeTask } from '../../src/scrape/scheduler.js';
import type { ScrapeOutcome } from '../../src/scrape/scraper.js';
import { buildTargets, TargetStatus } from '../../src/targets/index.js';
import type { BuildResult } from '../../src/targets/index.js';
import { collectGarbage } from '../helpers/collect-garbage.js';
import { captureLogger } from '../helpers/log.js';
import { exposedValue } from '../helpers/metrics.js';
import { scrapedProfile } from '../helpers/profiles.js';
import { config, staticGroups } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';

// What TargetStatus tells of a target's health beyond /targets: the
// pprof_scraper_target_up gauge (bounded by server.target_up_limit) and the
// log of a target that keeps failing (its first failure, a summary every few
// minutes, its recovery).

async function build(addresses: string[], types = ['heap', 'goroutine']): Promise<BuildResult> {
  const c = config(`profiles:
${types.map((t) => `  ${t}: {path: /debug/pprof/${t}}`).join('\n')}
discovery:
  - static:
      targets: [${addresses.map((a, i) => `{address: "${a}", service: svc-${i}}`).join(', ')}]
`);
  return buildTargets(c, await staticGroups(c));
}

function tasksOf(result: BuildResult): ScrapeTask[] {
  return result.targets.flatMap((target) => target.profiles.map((profile) => ({ key: `${target.id}/${profile.type}`, target, profile })));
}

const failed: ScrapeOutcome = { ok: false, result: 'network', reason: 'connection refused (ECONNREFUSED 10.0.0.1:6060)', bytes: 0, durationMs: 2 };
function succeeded(task: ScrapeTask): ScrapeOutcome {
  return { ok: true, profile: scrapedProfile({ targetId: task.target.id, type: task.profile.type, service: task.target.service }), bytes: 10, durationMs: 3 };
}

test('pprof_scraper_target_up: 1 after a good scrape, 0 after a failed one, none before the first; gone targets lose their series', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  const { logger } = captureLogger();
  const status = new TargetStatus({ logger, metrics, lastProfilesBytes: 1 << 20 });
  const result = await build(['10.0.0.1:6060', '10.0.0.2:6060']);
  status.built(result);
  const task = (service: string, type: string): ScrapeTask => tasksOf(result).find((t) => t.target.service === service && t.profile.type === type) as ScrapeTask;
  const [a1, a2, b1] = [task('svc-0', 'heap'), task('svc-0', 'goroutine'), task('svc-1', 'heap')];
  status.scraped(a1, succeeded(a1));
  status.scraped(a2, failed);
  status.scraped(b1, failed);
  let text = await metrics.registry.metrics();
  assert.equal(exposedValue(text, 'pprof_scraper_target_up', { service: 'svc-0', instance: '10.0.0.1:6060', type: 'heap' }), 1);
  assert.equal(exposedValue(text, 'pprof_scraper_target_up', { service: 'svc-0', instance: '10.0.0.1:6060', type: 'goroutine' }), 0);
  assert.equal(exposedValue(text, 'pprof_scraper_target_up', { service: 'svc-1', instance: '10.0.0.2:6060', type: 'heap' }), 0);
  assert.equal(exposedValue(text, 'pprof_scraper_target_up', { service: 'svc-1', type: 'goroutine' }), undefined, 'not scraped yet: no series');
  // the same series flips in place
  status.scraped(b1, succeeded(b1));
  status.scraped(a1, failed);
  text = await metrics.registry.metrics();
  assert.equal(exposedValue(text, 'pprof_scraper_target_up', { service: 'svc-1', type: 'heap' }), 1);
  assert.equal(exposedValue(text, 'pprof_scraper_target_up', { service: 'svc-0', type: 'heap' }), 0);
  assert.equal(exposedValue(text, 'pprof_scraper_target_up_unexposed'), 0);

  // the second target leaves the config: its series go
  status.built(await build(['10.0.0.1:6060']));
  text = await metrics.registry.metrics();
  assert.equal(exposedValue(text, 'pprof_scraper_target_up', { service: 'svc-1' }), undefined);
  assert.equal(exposedValue(text, 'pprof_scraper_target_up', { service: 'svc-0', type: 'heap' }), 0);
});

test('pprof_scraper_target_up is bounded by target_up_limit: the rest counted as unexposed, logged once, room freed when targets go', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  const log = captureLogger();
  const { logger } = log;
  const find = (msg: RegExp): Record<string, unknown>[] => log.find(msg);
  const status = new TargetStatus({ logger, metrics, lastProfilesBytes: 1 << 20, targetUpLimit: 3 });
  const result = await build(['10.0.0.1:6060', '10.0.0.2:6060', '10.0.0.3:6060']);
  status.built(result);
  const tasks = tasksOf(result);
  for (let round = 0; round < 3; round++) for (const t of tasks) status.scraped(t, failed);
  const series = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('pprof_scraper_target_up{'));
  let text = await metrics.registry.metrics();
  assert.equal(series(text).length, 3);
  assert.equal(exposedValue(text, 'pprof_scraper_target_up_unexposed'), 3);
  assert.equal(find(/target_up_limit/).length, 1, 'the limit is logged once, not at every scrape');
  assert.equal(find(/target_up_limit/)[0]?.['limit'], 3);

  // the first target goes: a target × type that had none gets its series at its next scrape
  status.built(await build(['10.0.0.2:6060', '10.0.0.3:6060']));
  const later = tasksOf(await build(['10.0.0.2:6060', '10.0.0.3:6060']));
  for (const t of later) status.scraped(t, succeeded(t));
  text = await metrics.registry.metrics();
  assert.equal(series(text).length, 3);
  assert.equal(exposedValue(text, 'pprof_scraper_target_up_unexposed'), 1);
  assert.equal(series(text).filter((l) => l.endsWith(' 1')).length, 3);

  // a lower limit at a reload drops series; 0 turns the gauge off
  status.setTargetUpLimit(1);
  assert.equal(series(await metrics.registry.metrics()).length, 1);
  status.setTargetUpLimit(0);
  text = await metrics.registry.metrics();
  assert.equal(series(text).length, 0);
  assert.equal(exposedValue(text, 'pprof_scraper_target_up_unexposed'), 0);
});

test('10,000 targets × 4 types: the default limit holds 5,000 series, scrapes update them in place', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  const { logger } = captureLogger('error');
  const status = new TargetStatus({ logger, metrics, lastProfilesBytes: 1 << 20 });
  const addresses = Array.from({ length: 10_000 }, (_, i) => `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}:6060`);
  const result = await build(addresses, ['heap', 'goroutine', 'block', 'mutex']);
  status.built(result);
  const tasks = tasksOf(result);
  assert.equal(tasks.length, 40_000);
  for (const t of tasks) status.scraped(t, failed);
  const text = await metrics.registry.metrics();
  assert.equal(text.split('\n').filter((l) => l.startsWith('pprof_scraper_target_up{')).length, 5000);
  assert.equal(exposedValue(text, 'pprof_scraper_target_up_unexposed'), 35_000);
  // more rounds of scrapes keep no new records: the heap grows by less than one small object per scrape
  assert.ok(collectGarbage(), 'this runtime lets a test ask for a garbage collection');
  const before = process.memoryUsage().heapUsed;
  for (let round = 0; round < 3; round++) for (const t of tasks) status.scraped(t, round === 1 ? succeeded(t) : failed);
  collectGarbage();
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 40_000 * 16, `heap grew by ${grown} bytes over 120,000 scrapes`);
});

test('a target that keeps failing: the first failure, then a summary every few minutes with the count and last reason, then its recovery', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  const log = captureLogger();
  const { logger } = log;
  const find = (msg: RegExp): Record<string, unknown>[] => log.find(msg);
  const status = new TargetStatus({ logger, metrics, lastProfilesBytes: 1 << 20, failureSummaryMs: 300 });
  const result = await build(['10.0.0.1:6060'], ['heap']);
  status.built(result);
  const [task] = tasksOf(result) as [ScrapeTask];
  for (let i = 0; i < 20; i++) status.scraped(task, failed);
  assert.equal(find(/^scrape failed$/).length, 1, 'one line for the first failure, not one per tick');
  assert.equal(find(/^scrape still failing$/).length, 0, 'no summary before the period');
  const first = find(/^scrape failed$/)[0];
  assert.deepEqual([first?.['target'], first?.['type'], first?.['result'], first?.['reason']], ['10.0.0.1:6060', 'heap', 'network', failed.ok ? '' : failed.reason]);

  await waitUntil('the summary period', () => {
    status.scraped(task, { ...failed, result: 'timeout', reason: 'no answer within 10s' });
    return find(/^scrape still failing$/).length === 1;
  }, { everyMs: 20 });
  const summary = find(/^scrape still failing$/)[0];
  assert.ok(Number(summary?.['failures']) > 20);
  assert.equal(summary?.['failed_since_last_line'], Number(summary?.['failures']) - 1);
  assert.equal(summary?.['reason'], 'no answer within 10s');
  assert.equal(summary?.['result'], 'timeout');
  assert.equal(typeof summary?.['failing_since'], 'string');

  status.scraped(task, succeeded(task));
  const recovered = find(/^scrape recovered$/);
  assert.equal(recovered.length, 1);
  assert.equal(recovered[0]?.['level'], 30);
  assert.ok(Number(recovered[0]?.['failures']) > 20);
  assert.equal(recovered[0]?.['last_reason'], 'no answer within 10s');
  status.scraped(task, succeeded(task));
  assert.equal(find(/^scrape recovered$/).length, 1, 'recovered once');

  // a new streak logs its first failure again
  status.scraped(task, failed);
  assert.equal(find(/^scrape failed$/).length, 2);
});
