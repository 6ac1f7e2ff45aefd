import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { defaultCpuSeconds } from '../../src/config/schema.js';
import { Scheduler } from '../../src/scrape/scheduler.js';
import type { ScrapeTask } from '../../src/scrape/scheduler.js';
import { buildTargets, targetsReport } from '../../src/targets/index.js';
import type { Target } from '../../src/targets/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { config, configErrors, group, staticGroups } from '../helpers/targets.js';

// The cpu type without `seconds` covers its interval less a margin: a tenth
// of the interval, at least 1 s and at most 5 s, in whole seconds.

async function cpuOf(yaml: string): Promise<{ address: string; seconds: number | undefined; url: string | undefined }[]> {
  const c = config(yaml);
  const { targets, dropped } = buildTargets(c, await staticGroups(c));
  assert.deepEqual(dropped, []);
  return targets.map((t) => {
    const cpu = t.profiles.find((p) => p.type === 'cpu');
    return { address: t.address, seconds: cpu?.seconds, url: cpu?.url };
  });
}

describe('default cpu seconds follow the interval', () => {
  const cases: [string, number][] = [
    ['60s', 55],
    ['15s', 14],
    ['10s', 9],
    ['1s', 1],
    ['2s', 1],
    ['5s', 4],
    ['30s', 27],
    ['1500ms', 1],
    ['5m', 295],
    ['1h', 3595],
    ['2h', 3600],
  ];
  for (const [interval, seconds] of cases) {
    test(`interval ${interval}: ?seconds=${seconds}`, async () => {
      const [cpu] = await cpuOf(`scrape: {interval: ${interval}}\ndiscovery:\n  - static: {targets: [10.0.0.5:6060]}`);
      assert.equal(cpu?.seconds, seconds);
      assert.equal(cpu?.url, `http://10.0.0.5:6060/debug/pprof/profile?seconds=${seconds}`);
    });
  }

  test('the default interval (60s) gives 55', async () => {
    const [cpu] = await cpuOf('discovery:\n  - static: {targets: [10.0.0.5:6060]}');
    assert.equal(cpu?.seconds, 55);
  });

  test('a cpu type listed without seconds follows the interval too', async () => {
    const [cpu] = await cpuOf('scrape: {interval: 20s}\nprofiles:\n  cpu: {path: /debug/pprof/profile}\ndiscovery:\n  - static: {targets: [10.0.0.5:6060]}');
    assert.equal(cpu?.url, 'http://10.0.0.5:6060/debug/pprof/profile?seconds=18');
  });

  test('the rule never goes down as the interval grows, and leaves at least the margin free', () => {
    let last = 0;
    for (let ms = 1000; ms <= 3 * 3_600_000; ms += 500) {
      const s = defaultCpuSeconds(ms);
      assert.ok(Number.isInteger(s) && s >= 1 && s <= 3600, `${ms} ms: ${s}`);
      assert.ok(s >= last, `${ms} ms: ${s} after ${last}`);
      if (ms >= 2000) assert.ok(s * 1000 <= ms - 1000, `${ms} ms: ${s} s leaves less than 1 s`);
      last = s;
    }
  });

  test('other types stay as they are: no seconds, no query', async () => {
    const c = config('scrape: {interval: 10s}\nprofiles:\n  heap: {path: /debug/pprof/heap}\n  fgprof: {path: /debug/fgprof}\ndiscovery:\n  - static: {targets: [10.0.0.5:6060]}');
    const [t] = buildTargets(c, await staticGroups(c)).targets;
    assert.deepEqual(t?.profiles.map((p) => [p.url, p.seconds]), [
      ['http://10.0.0.5:6060/debug/pprof/heap', undefined],
      ['http://10.0.0.5:6060/debug/fgprof', undefined],
    ]);
  });
});

describe('an explicit seconds is kept', () => {
  test('as given, whatever the interval', async () => {
    for (const interval of ['10s', '60s', '1h']) {
      const [cpu] = await cpuOf(`scrape: {interval: ${interval}}\nprofiles:\n  cpu: {path: /debug/pprof/profile, seconds: 7}\ndiscovery:\n  - static: {targets: [10.0.0.5:6060]}`);
      assert.equal(cpu?.url, 'http://10.0.0.5:6060/debug/pprof/profile?seconds=7', interval);
    }
  });

  test('and still has to be shorter than a per-target interval: that target is dropped, saying why', () => {
    const c = config('profiles:\n  cpu: {path: /debug/pprof/profile, seconds: 10}\ndiscovery:\n  - ec2: {}');
    const { targets, dropped } = buildTargets(c, group(c, [{ address: '10.0.1.1', labels: {}, directives: { 'pprof.interval': '5s' } }, { address: '10.0.1.2', labels: {} }]));
    assert.deepEqual(dropped.map((d) => d.reason), ['interval 5s is not longer than profiles.cpu.seconds (10s)']);
    assert.deepEqual(targets.map((t) => t.profiles[0]?.url), ['http://10.0.1.2:6060/debug/pprof/profile?seconds=10']);
  });
});

describe('per-target intervals derive their own seconds', () => {
  test('a static target, an overrides: rule and a pprof.interval tag', async () => {
    const c = config(`
scrape: {interval: 60s}
discovery:
  - static:
      targets: [10.0.0.5:6060, {address: 10.0.0.6:6060, interval: 15s}, {address: 10.0.0.7:6060, labels: {team: fast}}]
  - ec2: {}
overrides:
  - match: {team: fast}
    interval: 30s
`);
    const built = buildTargets(c, [...(await staticGroups(c)), ...group(c, [{ address: '10.0.1.1', labels: {}, directives: { 'pprof.interval': '5s' } }])]);
    assert.deepEqual(built.dropped, []);
    assert.deepEqual(
      built.targets.map((t) => [t.address, t.profiles.find((p) => p.type === 'cpu')?.seconds]),
      [
        ['10.0.0.5:6060', 55],
        ['10.0.0.6:6060', 14],
        ['10.0.0.7:6060', 27],
        ['10.0.1.1:6060', 4],
      ],
    );
  });

  test('a cron schedule: the shortest time between its ticks', async () => {
    const every5m = await cpuOf('scrape: {schedule: "*/5 * * * *"}\ndiscovery:\n  - static: {targets: [10.0.0.5:6060]}');
    assert.equal(every5m[0]?.seconds, 295);
    const everySecond = await cpuOf('scrape: {schedule: "* * * * * *", spread: 0s}\ndiscovery:\n  - static: {targets: [10.0.0.5:6060]}');
    assert.equal(everySecond[0]?.seconds, 1);
  });
});

describe('check and the dry run', () => {
  test('any interval with the default profiles is valid, per target too', () => {
    for (const interval of ['1s', '2s', '5s', '10s', '15s', '60s']) {
      assert.deepEqual(configErrors(`scrape: {interval: ${interval}}\noverrides:\n  - {match: {service: api}, interval: ${interval}}`), [], interval);
    }
  });

  test('the dry run shows ?seconds=N for the interval', async () => {
    const c = config('scrape: {interval: 10s}\ndiscovery:\n  - static: {targets: ["http://10.0.0.7:8080/internal/pprof"]}');
    const report = targetsReport(buildTargets(c, await staticGroups(c)), []);
    const json = JSON.parse(JSON.stringify(report)) as { targets: { interval: string; profiles: { type: string; url: string }[] }[] };
    assert.equal(json.targets[0]?.interval, '10s');
    assert.equal(json.targets[0]?.profiles.find((p) => p.type === 'cpu')?.url, 'http://10.0.0.7:8080/internal/pprof/profile?seconds=9');
  });

  test('pprof-scraper check and targets accept interval: 10s with the defaults', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cpu-coverage-'));
    try {
      const file = join(dir, 'c.yaml');
      await writeFile(file, 'scrape: {interval: 10s}\ndiscovery:\n  - static: {targets: [127.0.0.1:6060]}\nrepositories:\n  - directory: {path: ./p}\n');
      const root = fileURLToPath(new URL('../../', import.meta.url));
      const run = (args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', join(root, 'src/cli/index.ts'), ...args], { cwd: root, timeout: 60_000 });
      const check = await run(['check', '--config', file]);
      assert.match(check.stdout, /: valid \(/);
      const dry = await run(['targets', '--config', file, '--output', 'json']);
      const report = JSON.parse(dry.stdout) as { targets: { profiles: { type: string; url: string }[] }[] };
      assert.equal(report.targets[0]?.profiles.find((p) => p.type === 'cpu')?.url, 'http://127.0.0.1:6060/debug/pprof/profile?seconds=9');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the scheduler with seconds close to the interval', () => {
  function cpuTarget(intervalMs: number, seconds: number): Target {
    return {
      id: 'a',
      provider: 'static',
      source: 0,
      service: 'svc',
      address: 'a:6060',
      scheme: 'http',
      labels: {},
      timing: { kind: 'interval', ms: intervalMs },
      profiles: [
        { type: 'cpu', url: `http://a:6060/debug/pprof/profile?seconds=${seconds}`, seconds, delta: false },
        { type: 'fgprof', url: 'http://a:6060/debug/fgprof?seconds=1', seconds: 1, delta: false },
      ],
    };
  }

  /** Runs `target` for `ms` of fake time; each CPU-style request takes its seconds plus `transferMs`. */
  async function simulate(target: Target, ms: number, transferMs: number) {
    const clock = new FakeClock();
    let inFlight = 0;
    let maxInFlight = 0;
    const started: string[] = [];
    const skipped: string[] = [];
    const scheduler = new Scheduler(
      { concurrency: 8, clock },
      {
        run: (task: ScrapeTask) =>
          new Promise<void>((resolve) => {
            inFlight++;
            maxInFlight = Math.max(maxInFlight, inFlight);
            started.push(task.profile.type);
            clock.setTimeout(() => {
              inFlight--;
              resolve();
            }, (task.profile.seconds ?? 0) * 1000 + transferMs);
          }),
        onSkipped: (task) => skipped.push(task.profile.type),
      },
    );
    scheduler.update([target]);
    await clock.advance(ms);
    scheduler.stop();
    return { started, skipped, maxInFlight };
  }

  test('60s with 55s: every tick runs, one CPU profile at a time', async () => {
    const r = await simulate(cpuTarget(60_000, defaultCpuSeconds(60_000)), 10 * 60_000, 500);
    assert.equal(r.maxInFlight, 1);
    assert.equal(r.skipped.filter((t) => t === 'cpu').length, 0);
    assert.ok(r.started.filter((t) => t === 'cpu').length >= 9);
  });

  test('1s with 1s: a tick that comes while the profile is still sent is skipped, never queued or overlapped', async () => {
    const r = await simulate(cpuTarget(1000, defaultCpuSeconds(1000)), 20_000, 100);
    assert.equal(r.maxInFlight, 1);
    const cpuStarts = r.started.filter((t) => t === 'cpu').length;
    assert.ok(cpuStarts >= 5 && cpuStarts <= 11, `cpu started ${cpuStarts} times in 20 s`);
    assert.ok(r.skipped.filter((t) => t === 'cpu').length >= 5);
  });
});
