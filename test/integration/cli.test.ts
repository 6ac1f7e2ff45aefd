import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { runCli, startDaemon } from '../helpers/cli.js';
import { waitUntil } from '../helpers/wait.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configFile(name: string, yaml: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, yaml);
  return file;
}

describe('the embedded default', () => {
  // It listens on 127.0.0.1:10101, as a fresh install does; no other test uses that port.
  test('with no config, the daemon profiles itself: a valid heap profile lands in ./profiles within 15 s', { timeout: 60_000 }, async () => {
    const cwd = await mkdtemp(join(dir, 'default-'));
    const started = Date.now();
    const daemon = startDaemon([], { cwd });
    try {
      const heapDir = join(cwd, 'profiles', 'pprof-scraper', 'heap');
      const file = await waitUntil('a heap profile in ./profiles', async () => (await readdir(heapDir).catch(() => [])).find((n) => n.endsWith('.pb.gz')), { timeoutMs: 15_000 });
      assert.ok(Date.now() - started < 15_000);
      const profile = Profile.decode(gunzipSync(await readFile(join(heapDir, file))));
      assert.ok(profile.sampleType.length > 0);
      const sidecar = JSON.parse(await readFile(join(heapDir, file.replace('.pb.gz', '.json')), 'utf8'));
      assert.deepEqual(sidecar.labels, { instance: '127.0.0.1:10101', provider: 'static' });
    } finally {
      const exit = await daemon.stop('SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null }, daemon.output());
    }
    // logs are JSON lines on stdout when it is not a terminal
    const lines = daemon.output().trim().split('\n');
    assert.ok(lines.every((l) => l.startsWith('{')), daemon.output());
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(records.some((r) => r['msg'] === 'pprof-scraper running'));
    // the target count once the providers have answered: the default's one static target, itself
    const first = records.filter((r) => typeof r['msg'] === 'string' && r['msg'].startsWith('first discovery round done'));
    assert.deepEqual(first.map((r) => [r['targets'], r['dropped']]), [[1, 0]], daemon.output());
  });
});

describe('run', () => {
  test('SIGINT stops it cleanly too; a failed scrape is one log line with target, type and reason', { timeout: 30_000 }, async () => {
    const file = await configFile(
      'run.yaml',
      `scrape: {interval: 1s, timeout: 500ms, bearer_token: s3cr3t-token}\nprofiles: {heap: {path: /debug/pprof/heap}}\ndiscovery:\n  - static: {targets: ["127.0.0.1:9"]}\nrepositories:\n  - directory: {path: ${join(dir, 'run-profiles')}}\nserver: {listen: "127.0.0.1:0"}\nstate_dir: ${join(dir, 'run-state')}\n`,
    );
    const daemon = startDaemon(['--config', file]);
    const line = await daemon.waitForLog(/^scrape failed$/);
    assert.equal(line['target'], '127.0.0.1:9');
    assert.equal(line['type'], 'heap');
    assert.match(String(line['reason']), /^connection refused/);
    assert.deepEqual(await daemon.stop('SIGINT'), { code: 0, signal: null });
    assert.ok(!daemon.output().includes('s3cr3t-token'), 'a secret was printed');
  });

  test('an invalid config: every error logged with line and column, exit 1', async () => {
    const file = await configFile('bad-run.yaml', 'scrape: {interval: soon, concurrency: 0}\nrepositories: []\n');
    const r = await runCli(['run', '--config', file]);
    assert.equal(r.code, 1);
    const errors = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['level'] === 'error');
    assert.deepEqual(
      errors.map((e) => [e['line'], e['column'], e['path']]),
      [
        [1, 20, 'scrape.interval'],
        [1, 39, 'scrape.concurrency'],
        [2, 15, 'repositories'],
      ],
    );
  });
});

describe('targets (the dry run)', () => {
  test('JSON on stdout: targets, dropped with reasons, no secrets; exit 0', async () => {
    const file = await configFile(
      'targets.yaml',
      `
scrape: {basic_auth: {username: u, password: hunter2}}
discovery:
  - static:
      service: api
      targets: [10.0.0.5:6060, {address: 10.0.0.6:6060, labels: {team: legacy-x}}, "http://10.0.0.7:8080/internal/pprof"]
overrides:
  - match: {team: "/^legacy-/"}
    drop: true
repositories:
  - directory: {path: ./p}
`,
    );
    const r = await runCli(['targets', '--config', file, '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.targets.map((t: { address: string }) => t.address), ['10.0.0.5:6060', '10.0.0.7:8080']);
    assert.deepEqual(Object.keys(report.targets[0]).sort(), ['address', 'id', 'interval', 'labels', 'profiles', 'provider', 'scheme', 'service']);
    assert.equal(report.targets[1].profiles[0].url, 'http://10.0.0.7:8080/internal/pprof/profile?seconds=55');
    assert.deepEqual(report.dropped, [{ provider: 'static', address: '10.0.0.6:6060', labels: {}, reason: 'dropped by overrides[0] (match team=/^legacy-/)' }]);
    assert.deepEqual(report.errors, []);
    assert.ok(!(r.stdout + r.stderr).includes('hunter2'));
  });

  test('a provider that fails: its error in errors, the others still printed, exit 2', async () => {
    const file = await configFile(
      'targets-err.yaml',
      `discovery:\n  - static: {targets: [10.0.0.5:6060]}\n  - docker: {host: "unix://${join(dir, 'no-such.sock')}", refresh: 30s}\nrepositories:\n  - directory: {path: ./p}\n`,
    );
    const r = await runCli(['targets', '--config', file, '--output', 'json'], { timeoutMs: 120_000 });
    assert.equal(r.code, 2, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.targets.length, 1);
    assert.equal(report.errors.length, 1);
    assert.equal(report.errors[0].provider, 'docker');
    assert.equal(report.errors[0].source, 'discovery[1]');
    assert.ok(report.errors[0].error.length > 0);
    assert.ok(r.stderr.length > 0, 'the error is logged on stderr too');
  });

  test('the table is for people', async () => {
    const file = await configFile('table.yaml', 'discovery:\n  - static: {service: api, targets: [10.0.0.5:6060]}\nrepositories:\n  - directory: {path: ./p}\n');
    const r = await runCli(['targets', '--config', file]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^SERVICE\s+ADDRESS\s+PROVIDER\s+INTERVAL\s+PROFILES\s+ID\napi\s+10\.0\.0\.5:6060\s+static\s+1m\s+cpu,heap,allocs,goroutine,block,mutex\s+[0-9a-f]{16}\n\n1 target\n$/);
  });

  test('a bad config or usage exits 1', async () => {
    const file = await configFile('bad.yaml', 'scrape: {intervall: 1m}\nrepositories: [{directory: {path: ./p}}]\n');
    const r = await runCli(['targets', '--config', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim(), `${file}:1:10: scrape.intervall: unknown key "intervall" (did you mean "interval"?)`);
    assert.equal((await runCli(['targets', '--output', 'xml'])).code, 1);
  });
});

describe('check, schema, help, version', () => {
  test('check: exit 0 with the verdict on stdout, exit 1 with every error on stderr', async () => {
    const good = await configFile('good.yaml', 'repositories:\n  - profefe: {url: "http://profefe:10100"}\n');
    const ok = await runCli(['check', '--config', good]);
    assert.equal(ok.code, 0);
    assert.equal(ok.stdout, `${good}: valid (0 discovery entries, 0 override rules, 1 repository)\n`);
    const bad = await configFile('bad-check.yaml', 'shard: {count: 2, index: 5}\nrepositories:\n  - profefe: {url: "http://profefe:10100", nmae: x}\n');
    const r = await runCli(['check', '--config', bad]);
    assert.equal(r.code, 1);
    assert.deepEqual(r.stderr.trim().split('\n'), [
      `${bad}:1:26: shard.index: shard index 5 must be below shard count 2 (0..1)`,
      `${bad}:3:44: repositories[0].profefe.nmae: unknown key "nmae" (did you mean "name"?)`,
      '2 errors',
    ]);
  });

  test('schema prints a JSON Schema of the config on stdout, and nothing else', async () => {
    const r = await runCli(['schema']);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    const schema = JSON.parse(r.stdout);
    assert.equal(schema.type, 'object');
    assert.equal(schema.additionalProperties, false);
    for (const key of ['scrape', 'profiles', 'discovery', 'overrides', 'repositories', 'server', 'shard', 'state_dir']) assert.ok(schema.properties[key], key);
    assert.ok(schema.properties.discovery.items.properties.ec2.properties.filters);
  });

  test('--help on every command, --version', async () => {
    for (const args of [['--help'], ['run', '--help'], ['targets', '--help'], ['check', '--help'], ['schema', '--help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /^Usage: pprof-scraper/);
    }
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    assert.equal((await runCli(['--version'])).stdout.split('\n')[0], `pprof-scraper ${pkg.version}`);
    assert.match((await runCli(['run', '--help'])).stdout, /--log-level|--config/);
  });
});
