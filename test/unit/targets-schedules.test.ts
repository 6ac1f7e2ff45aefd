import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { instanceMetadata } from '../../src/discovery/providers/ec2-metadata.js';
import { buildTargets } from '../../src/targets/index.js';
import { config, configErrors } from '../helpers/targets.js';

const HEAP_ONLY = 'profiles: {heap: {path: /debug/pprof/heap}}';

/** The config errors of `yaml`, without their test.yaml:line:column. */
function errorMessages(yaml: string): string[] {
  return configErrors(yaml).map((l) => l.replace(/^test\.yaml:\d+:\d+: /, ''));
}

function tagged(ip: string, tags: Record<string, string>) {
  return instanceMetadata({ InstanceId: `i-${ip}`, PrivateIpAddress: ip, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }, 'r', { address: 'private_ip', serviceTag: 'Name', tagLabels: [] });
}

describe('the 1s interval floor', () => {
  test('an interval below 1s anywhere in the file is a config error', () => {
    const errors = errorMessages(`
${HEAP_ONLY}
scrape: {interval: 999ms}
discovery:
  - ec2: {interval: 1ms}
  - static: {targets: [{address: "h:1", interval: 500ms}]}
overrides:
  - {match: {a: b}, interval: 0s}
`);
    const floor = (v: string): string => `interval ${v} is below the 1s minimum: no target is scraped more than once a second`;
    assert.deepEqual(errors, [
      `scrape.interval: ${floor('999ms')}`,
      `discovery[0].ec2.interval: ${floor('1ms')}`,
      `discovery[1].static.targets[0].interval: ${floor('500ms')}`,
      `overrides[0].interval: ${floor('0s')}`,
    ]);
    assert.equal(config(`${HEAP_ONLY}\nscrape: {interval: 1s}`).scrape.interval, 1000);
  });

  test('a tag below 1s drops its instance with a reason; 1s is fine', () => {
    const c = config(`${HEAP_ONLY}\ndiscovery:\n  - ec2: {}`);
    const found = [tagged('10.0.0.1', { 'pprof.interval': '1ms' }), tagged('10.0.0.2', { 'pprof.interval': '999ms' }), tagged('10.0.0.3', { 'pprof.interval': '1s' })];
    const { targets, dropped } = buildTargets(c, [{ source: 0, provider: 'ec2', directiveNoun: 'tag', targets: found }]);
    assert.deepEqual(dropped.map((d) => d.reason), ['tag pprof.interval: "1ms" is below the 1s minimum interval', 'tag pprof.interval: "999ms" is below the 1s minimum interval']);
    assert.deepEqual(targets.map((t) => t.timing), [{ kind: 'interval', ms: 1000 }]);
  });

  test('a tag too long to count drops its instance instead of scheduling nonsense', () => {
    const c = config(`${HEAP_ONLY}\ndiscovery:\n  - ec2: {}`);
    const huge = `${'9'.repeat(400)}w`;
    const { targets, dropped } = buildTargets(c, [{ source: 0, provider: 'ec2', directiveNoun: 'tag', targets: [tagged('10.0.0.1', { 'pprof.interval': huge }), tagged('10.0.0.2', { 'pprof.interval': '52w' })] }]);
    assert.deepEqual(dropped.map((d) => d.reason), [`tag pprof.interval: ${JSON.stringify(huge)} is not a duration (like 30s or 5m)`]);
    assert.deepEqual(targets.map((t) => t.timing), [{ kind: 'interval', ms: 52 * 7 * 86_400_000 }]);
    assert.deepEqual(errorMessages(`${HEAP_ONLY}\nscrape: {interval: ${huge}}`), ['scrape.interval: interval is too long to count in milliseconds: give a shorter one']);
  });

  test('a cron schedule fires at most once a second (its finest field), the floor itself; spread defaults to 30s', () => {
    const c = config(`${HEAP_ONLY}\nscrape: {schedule: "* * * * * *", spread: 500ms}\ndiscovery:\n  - static: {targets: ["h:1"]}`);
    assert.deepEqual(c.scrape.schedule, '* * * * * *');
    assert.equal(config(`${HEAP_ONLY}\nscrape: {schedule: "* * * * *"}\ndiscovery:\n  - static: {targets: ["h:1"]}`).scrape.spread, 30_000);
    // the default spread is checked against the ticks as a given one is
    assert.deepEqual(errorMessages(`${HEAP_ONLY}\nscrape: {schedule: "* * * * * *"}`), ['scrape.schedule: spread defaults to 30s, which is not shorter than the time between ticks of "* * * * * *" (1s): set scrape.spread below 1s (0s for none)']);
  });
});
