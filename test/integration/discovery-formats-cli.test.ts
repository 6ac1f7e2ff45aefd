/**
 * One inventory, four ways: the same target list under `static:`, written as
 * a file_sd JSON file and a YAML file, and served as http_sd. `pprof-scraper
 * targets --output json` gives the same targets for each: service, address,
 * scheme, labels, interval and profile URLs. Only what names the provider
 * differs (the `provider` field and label, and so the id, which hashes the
 * labels).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { runCli } from '../helpers/cli.js';

const GROUPS = [
  { targets: ['127.0.0.1:6060', '127.0.0.2:6060'], labels: { team: 'core', 'pprof.service': 'api' } },
  { targets: ['[::1]:6061'], labels: { tier: 'gold', env: 'staging' } },
  { targets: ['127.0.0.3'], labels: { 'pprof.port': '7070', 'pprof.path': '/internal/pprof', 'pprof.profiles': 'cpu,heap', 'pprof.interval': '30s' } },
];

const STATIC_TARGETS = `
        - {address: "127.0.0.1:6060", service: api, labels: {team: core}}
        - {address: "127.0.0.2:6060", service: api, labels: {team: core}}
        - {address: "[::1]:6061", labels: {tier: gold, env: staging}}
        - {address: "127.0.0.3", port: 7070, path: /internal/pprof, profiles: [cpu, heap], interval: 30s}`;

const COMMON = `scrape: {labels: {env: prod, region: eu}}
repositories:
  - directory: {path: ./profiles}
`;

let dir = '';
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(GROUPS));
});
let url = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'formats-'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/targets`;
  await writeFile(join(dir, 'inventory.json'), JSON.stringify(GROUPS, null, 2));
  await writeFile(join(dir, 'inventory.yml'), stringify(GROUPS));
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

interface Report {
  targets: Record<string, unknown>[];
  dropped: unknown[];
  errors: unknown[];
}

async function dryRun(name: string, discovery: string): Promise<Report> {
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, `${COMMON}discovery:\n${discovery}\n`);
  const r = await runCli(['targets', '--config', path, '--output', 'json'], { cwd: dir });
  assert.equal(r.code, 0, `${name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Report;
}

/** A target without what names its provider. */
function comparable(t: Record<string, unknown>): Record<string, unknown> {
  const { id: _id, provider, labels, ...rest } = t;
  const { provider: label, ...others } = labels as Record<string, string>;
  assert.equal(label, provider, 'the provider label names the provider');
  return { ...rest, labels: others };
}

test('file_sd (JSON and YAML) and http_sd give the targets static: gives for the same hosts', async () => {
  const fromStatic = await dryRun('static', `  - static:\n      targets:${STATIC_TARGETS}`);
  const fromJson = await dryRun('file-json', '  - file: {files: [inventory.json]}');
  const fromYaml = await dryRun('file-yaml', '  - file: {files: ["*.yml"]}');
  const fromHttp = await dryRun('http', `  - http: {url: "${url}"}`);

  assert.equal(fromStatic.targets.length, 4);
  assert.deepEqual(fromStatic.dropped, []);
  const expected = fromStatic.targets.map(comparable);
  for (const [name, report] of [['file (JSON)', fromJson], ['file (YAML)', fromYaml], ['http', fromHttp]] as const) {
    assert.deepEqual(report.errors, [], name);
    assert.deepEqual(report.dropped, [], name);
    assert.deepEqual(report.targets.map(comparable), expected, name);
  }
  // what the lists hold, not only that they agree
  assert.deepEqual(expected[0], {
    service: 'api',
    address: '127.0.0.1:6060',
    scheme: 'http',
    labels: { instance: '127.0.0.1:6060', env: 'prod', region: 'eu', team: 'core' },
    interval: '1m',
    profiles: expected[0]?.['profiles'],
  });
  assert.equal((expected[2]?.['labels'] as Record<string, string>)['env'], 'staging', "a target's own label wins over scrape.labels, as a static target's does");
  assert.equal(expected[3]?.['service'], '127.0.0.3');
  assert.deepEqual(expected[3]?.['profiles'], [
    { type: 'cpu', url: 'http://127.0.0.3:7070/internal/pprof/profile?seconds=27' },
    { type: 'heap', url: 'http://127.0.0.3:7070/internal/pprof/heap' },
  ]);
});

test('the dry run shows a bad file as an error (exit 2) and the good files\' targets', async () => {
  await writeFile(join(dir, 'broken.json'), '[{"targets": ["127.0.0.9:6060"],');
  const path = join(dir, 'broken.yaml');
  await writeFile(path, `${COMMON}discovery:\n  - file: {files: [inventory.json, broken.json]}\n`);
  const r = await runCli(['targets', '--config', path, '--output', 'json'], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  const report = JSON.parse(r.stdout) as Report;
  assert.equal(report.targets.length, 4);
  assert.match(JSON.stringify(report.errors), /broken\.json:1: not valid JSON/);
});
