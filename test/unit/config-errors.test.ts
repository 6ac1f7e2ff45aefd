import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigLoadError, formatConfigError, loadConfigFile, parseConfig } from '../../src/config/index.js';

// Each bad file, and every error it must produce: exact text and line:column.
// `F` stands for the file's path in the messages.

const REPO = 'repositories:\n  - directory: {path: ./p}\n';

const cases: { name: string; yaml: string; errors: string[]; env?: Record<string, string> }[] = [
  {
    name: 'unknown key with a close match',
    yaml: `scrape:\n  intervall: 10s\n${REPO}`,
    errors: ['F:2:3: scrape.intervall: unknown key "intervall" (did you mean "interval"?)'],
  },
  {
    name: 'unknown top-level key with a transposition',
    yaml: `scarpe: {}\n${REPO}`,
    errors: ['F:1:1: scarpe: unknown key "scarpe" (did you mean "scrape"?)'],
  },
  {
    name: 'unknown key far from any known one lists them',
    yaml: `server: {bogus: 1}\n${REPO}`,
    errors: ['F:1:10: server.bogus: unknown key "bogus" (known keys: listen, allowed_hosts, enable_reload, basic_auth, tls, health, target_up_limit)'],
  },
  {
    name: 'bad duration',
    yaml: `scrape:\n  timeout: 5x\n${REPO}`,
    errors: ['F:2:12: scrape.timeout: "5x" is not a duration: use a number and a unit, like 250ms, 10s, 5m, 1h or 7d'],
  },
  {
    name: 'a number where a duration goes',
    yaml: `scrape:\n  interval: 60\n${REPO}`,
    errors: ['F:2:13: scrape.interval: expected a duration like 10s or 5m, got number 60'],
  },
  {
    name: 'bad size',
    yaml: `scrape:\n  max_profile_size: lots\n${REPO}`,
    errors: ['F:2:21: scrape.max_profile_size: "lots" is not a size: use a number and a unit, like 512KiB, 64MiB or 10GiB'],
  },
  {
    name: 'port out of range in a static address',
    yaml: `discovery:\n  - static:\n      targets: [10.0.0.5:99999]\n${REPO}`,
    errors: ['F:3:17: discovery[0].static.targets[0]: port 99999 is out of range 1..65535 in "10.0.0.5:99999"'],
  },
  {
    name: 'port out of range as a field',
    yaml: `discovery:\n  - ec2:\n      port: 70000\n${REPO}`,
    errors: ['F:3:13: discovery[0].ec2.port: port 70000 is out of range 1..65535'],
  },
  {
    name: 'CPU seconds not below the interval',
    yaml: `scrape:\n  interval: 10s\nprofiles:\n  cpu: {path: /debug/pprof/profile, seconds: 10}\n${REPO}`,
    errors: ['F:2:13: scrape.interval: interval 10s is not longer than profiles.cpu.seconds (10s): make the interval longer than the CPU profile\'s seconds, or shorten seconds'],
  },
  {
    name: 'CPU seconds against a per-target interval',
    yaml: `profiles:\n  cpu: {path: /debug/pprof/profile, seconds: 10}\noverrides:\n  - match: {service: api}\n    interval: 5s\n${REPO}`,
    errors: ['F:5:15: overrides[0].interval: interval 5s is not longer than profiles.cpu.seconds (10s): make the interval longer than the CPU profile\'s seconds, or shorten seconds'],
  },
  {
    name: 'interval 10s with the default profiles is fine (cpu seconds follow the interval)',
    yaml: `scrape:\n  interval: 10s\n${REPO}`,
    errors: [],
  },
  {
    name: 'the shortest intervals with the default profiles are fine, per target too',
    yaml: `scrape:\n  interval: 1s\noverrides:\n  - match: {service: api}\n    interval: 2s\n${REPO}`,
    errors: [],
  },
  {
    name: 'a cpu type without seconds accepts any interval',
    yaml: `scrape:\n  interval: 5s\nprofiles:\n  cpu: {path: /debug/pprof/profile}\n${REPO}`,
    errors: [],
  },
  {
    name: 'a timeout longer than the interval is fine',
    yaml: `scrape: {interval: 15s, timeout: 1m}\n${REPO}`,
    errors: [],
  },
  {
    name: 'shard index not below count',
    yaml: `shard: {count: 2, index: 2}\n${REPO}`,
    errors: ['F:1:26: shard.index: shard index 2 must be below shard count 2 (0..1)'],
  },
  {
    name: 'repository names not unique',
    yaml: 'repositories:\n  - profefe: {url: "http://a:10100"}\n  - profefe: {url: "http://b:10100"}\n',
    errors: ['F:3:14: repositories[1].profefe: repository name "profefe" is already used by repositories[0]: set a unique name: on each'],
  },
  {
    name: 'no repositories',
    yaml: 'scrape: {}\n',
    errors: ['F:1:1: missing required key "repositories"'],
  },
  {
    name: 'two providers in one entry',
    yaml: `discovery:\n  - static: {targets: [a:1]}\n    docker: {}\n${REPO}`,
    errors: ['F:2:5: discovery[0]: one provider per entry: this one has static and docker; give each its own list item'],
  },
  {
    name: 'unknown provider',
    yaml: `discovery:\n  - statik: {targets: [a:1]}\n${REPO}`,
    errors: ['F:2:5: discovery[0].statik: unknown key "statik" (did you mean "static"?)'],
  },
  {
    name: 'unknown profile type named by a target',
    yaml: `discovery:\n  - static:\n      targets: [{address: "a:1", profiles: [cpux]}]\n${REPO}`,
    errors: ['F:3:45: discovery[0].static.targets[0].profiles[0]: unknown profile type "cpux" (did you mean "cpu"?): the types are the keys of profiles: (cpu, heap, allocs, goroutine, block, mutex, threadcreate, trace)'],
  },
  {
    name: 'bad regex in an override',
    yaml: `overrides:\n  - match: {team: "/^(legacy/"}\n    drop: true\n${REPO}`,
    errors: ['F:2:19: overrides[0].match.team: "/^(legacy/" is not a valid regular expression: Invalid regular expression: /^(legacy/: Unterminated group'],
  },
  {
    name: 'a rule that sets nothing',
    yaml: `overrides:\n  - match: {team: core}\n${REPO}`,
    errors: ['F:2:5: overrides[0]: this rule sets nothing: give drop: true or a setting (port, path, scheme, service, labels, profiles, interval)'],
  },
  {
    name: 'bad label name',
    yaml: `scrape:\n  labels: {bad-name: x}\n${REPO}`,
    errors: ['F:2:12: scrape.labels.bad-name: label name "bad-name" is not valid: use letters, digits and _ (not first)'],
  },
  {
    name: 'URL with another scheme',
    yaml: `discovery:\n  - static: {targets: ["ftp://h:21"]}\n${REPO}`,
    errors: ['F:2:24: discovery[0].static.targets[0]: scheme "ftp" in "ftp://h:21" is not http or https'],
  },
  {
    name: 'bad repository URL',
    yaml: 'repositories:\n  - profefe: {url: nope}\n',
    errors: ['F:2:20: repositories[0].profefe.url: "nope" is not an http:// or https:// URL'],
  },
  {
    name: 'two ways to authenticate',
    yaml: `scrape:\n  bearer_token: a\n  basic_auth: {username: u, password: p}\n${REPO}`,
    errors: ['F:3:15: scrape.basic_auth: give one way to authenticate: bearer_token and basic_auth are both set'],
  },
  {
    name: 'missing secret file',
    yaml: `scrape:\n  bearer_token_file: /nonexistent/token\n${REPO}`,
    errors: ['F:2:22: scrape.bearer_token_file: cannot read file "/nonexistent/token": ENOENT'],
  },
  {
    name: 'unset environment variable',
    yaml: `profiles:\n  heap: {path: "\${HEAP_PATH}"}\n${REPO}`,
    errors: ['F:2:16: profiles.heap.path: environment variable HEAP_PATH is not set (give it a value, or a default with ${HEAP_PATH:-default})'],
  },
  {
    name: 'interval and schedule together',
    yaml: `scrape: {interval: 1m, schedule: "*/10 * * * *"}\n${REPO}`,
    errors: ['F:1:34: scrape.schedule: set either scrape.interval or scrape.schedule, not both'],
  },
  {
    name: 'a spread not shorter than the time between cron ticks',
    yaml: `scrape: {schedule: "*/10 * * * * *", spread: 10s}\n${REPO}`,
    errors: ['F:1:46: scrape.spread: spread 10s is not shorter than the time between ticks of "*/10 * * * * *" (10s)'],
  },
  {
    name: 'cron ticks that come sooner than the default spread',
    yaml: `scrape: {schedule: "*/10 * * * * *"}\n${REPO}`,
    errors: ['F:1:20: scrape.schedule: spread defaults to 30s, which is not shorter than the time between ticks of "*/10 * * * * *" (10s): set scrape.spread below 10s (0s for none)'],
  },
  {
    name: 'bad cron expression',
    yaml: `scrape: {schedule: "every tuesday"}\n${REPO}`,
    errors: ['F:1:20: scrape.schedule: "every tuesday" is not a cron expression (like "*/10 * * * *")'],
  },
  {
    name: 'YAML syntax error stops at the first',
    yaml: 'scrape:\n  interval: [10s\nrepositories: []\n',
    errors: ['F:3:1: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  },
  {
    name: 'several errors at once, in file order',
    yaml: `scrape:\n  concurrency: 0\n  timeout: soon\ndiscovery:\n  - static: {targets: ["h:0"]}\n${REPO}shard: {count: 0, index: 0}\n`,
    errors: [
      'F:2:16: scrape.concurrency: concurrency must be at least 1',
      'F:3:12: scrape.timeout: "soon" is not a duration: use a number and a unit, like 250ms, 10s, 5m, 1h or 7d',
      'F:5:24: discovery[0].static.targets[0]: port 0 is out of range 1..65535 in "h:0"',
      'F:8:16: shard.count: shard count must be at least 1',
    ],
  },
];

describe('config errors', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const c of cases) {
    test(c.name, async () => {
      const file = join(dir, `${c.name.replace(/\W+/g, '-')}.yaml`);
      await writeFile(file, c.yaml);
      let got: string[] = [];
      try {
        await loadConfigFile(file, { env: c.env ?? {} });
      } catch (err) {
        assert.ok(err instanceof ConfigLoadError, `expected ConfigLoadError, got ${String(err)}`);
        got = err.errors.map((e) => formatConfigError(e).replace(file, 'F'));
      }
      assert.deepEqual(got, c.errors);
    });
  }
});

describe('config values', () => {
  test('env expansion: defaults, $$ and an unquoted number', () => {
    const loaded = parseConfig(
      'discovery:\n  - ec2:\n      port: ${PORT}\n      region: ${REGION:-eu-west-1}\n      service: pay$$day\nrepositories:\n  - directory: {path: ./p}\n',
      'test.yaml',
      { baseDir: '.', env: { PORT: '7070' } },
    );
    const ec2 = loaded.config.discovery[0]?.ec2;
    assert.equal(ec2?.port, 7070);
    assert.equal(ec2?.region, 'eu-west-1');
    assert.equal(ec2?.service, 'pay$day');
  });

  test('defaults fill in, and a profiles: map replaces the default set', () => {
    const plain = parseConfig(REPO, 't.yaml', { baseDir: '.', env: {} }).config;
    assert.equal(plain.scrape.interval, 60_000);
    assert.equal(plain.scrape.timeout, 10_000);
    assert.equal(plain.scrape.concurrency, 64);
    assert.equal(plain.scrape.max_profile_size, 64 * 1024 ** 2);
    assert.equal(plain.server.listen, '127.0.0.1:10101');
    assert.deepEqual(Object.keys(plain.profiles), ['cpu', 'heap', 'allocs', 'goroutine', 'block', 'mutex', 'threadcreate', 'trace']);
    assert.equal(plain.profiles['threadcreate']?.enabled, false);
    assert.equal(plain.profiles['trace']?.enabled, false);
    const own = parseConfig(`profiles:\n  heap: {path: /debug/pprof/heap}\n${REPO}`, 't.yaml', { baseDir: '.', env: {} }).config;
    assert.deepEqual(Object.keys(own.profiles), ['heap']);
  });

  test('secrets never show in JSON, inspect or strings', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-secret-'));
    try {
      const file = join(dir, 'c.yaml');
      await writeFile(file, `scrape:\n  basic_auth: {username: u, password: hunter2-secret}\n${REPO}`);
      const loaded = await loadConfigFile(file);
      const pw = loaded.config.scrape.basic_auth?.password;
      assert.equal(pw?.reveal(), 'hunter2-secret');
      const { inspect } = await import('node:util');
      for (const shown of [JSON.stringify(loaded.config), inspect(loaded.config, { depth: 10 }), `${String(pw)}`]) {
        assert.ok(!shown.includes('hunter2'), shown);
        assert.ok(shown.includes('<secret>'));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
