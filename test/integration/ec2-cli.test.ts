/**
 * The dry run (`pprof-scraper targets`) with an ec2 entry, as users run it:
 * the built CLI against the loopback EC2 API.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import type { TargetsReport } from '../../src/targets/index.js';
import { runCli } from '../helpers/cli.js';
import { FAILURES, fakeAwsEnv, startEc2Fake } from '../helpers/ec2-fake.js';
import type { Ec2Fake, FakeInstance } from '../helpers/ec2-fake.js';

let fake: Ec2Fake;
let dir: string;
let config: string;

const instances: FakeInstance[] = [
  { id: 'i-0a', publicIp: '54.0.0.10', tags: { Name: 'billing', pprof: 'true', team: 'core', 'pprof.port': '7070' } },
  { id: 'i-0b', publicIp: '54.0.0.11', tags: { pprof: 'true', team: 'edge', 'pprof.label.tier': 'gold' } },
  { id: 'i-0c', publicIp: '54.0.0.12', tags: { Name: 'broken', pprof: 'true', 'pprof.port': 'seventy' } },
  { id: 'i-0d', publicIp: null, tags: { Name: 'private-only', pprof: 'true' } },
  { id: 'i-0e', publicIp: '54.0.0.14', tags: { Name: 'untagged' } },
];

before(async () => {
  fake = await startEc2Fake();
  dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-ec2-cli-'));
  config = join(dir, 'config.yaml');
  await writeFile(
    config,
    `discovery:
  - static: {targets: ["127.0.0.1:6060"], service: fixed}
  - ec2:
      region: eu-west-1
      endpoint: ${fake.url}
      filters: {"tag:pprof": ["true"]}
      address: public_ip
      tag_labels: [team]
repositories:
  - directory: {path: ${join(dir, 'profiles')}}
`,
  );
});

after(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  fake.clearFailures();
  fake.requests.length = 0;
  fake.setInstances('eu-west-1', instances);
});

async function dryRun(): Promise<{ code: number | null; report: TargetsReport; stderr: string }> {
  const env = fakeAwsEnv();
  delete env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'];
  const r = await runCli(['targets', '--config', config, '--output', 'json'], { env, timeoutMs: 60_000 });
  let report: TargetsReport;
  try {
    report = JSON.parse(r.stdout) as TargetsReport;
  } catch {
    assert.fail(`stdout is not the JSON report alone:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  // the SDK's Node-version notice stays out of the output
  assert.doesNotMatch(r.stderr, /NodeVersionSupportWarning|AWS SDK for JavaScript|@smithy/);
  return { code: r.code, report, stderr: r.stderr };
}

test('targets: ec2 targets with their labels, dropped instances with reasons, exit 0', async () => {
  const { code, report, stderr } = await dryRun();
  assert.equal(code, 0, stderr);
  assert.deepEqual(report.errors, []);
  const ec2 = report.targets.filter((t) => t.provider === 'ec2');
  assert.deepEqual(
    ec2.map((t) => [t.labels['instance_id'], t.service, t.address]),
    [
      ['i-0a', 'billing', '54.0.0.10:7070'],
      ['i-0b', 'i-0b', '54.0.0.11:6060'],
    ],
  );
  assert.deepEqual(ec2[0]?.labels, {
    instance: '54.0.0.10:7070',
    provider: 'ec2',
    team: 'core',
    instance_id: 'i-0a',
    instance_type: 't3.micro',
    availability_zone: 'us-east-1a',
    region: 'eu-west-1',
    vpc_id: 'vpc-0123456789abcdef0',
    image_id: 'ami-0abcdef1234567890',
  });
  assert.equal(ec2[1]?.labels['tier'], 'gold');
  assert.ok(ec2[0]?.profiles.some((p) => p.url === 'http://54.0.0.10:7070/debug/pprof/heap'));
  assert.equal(report.targets.filter((t) => t.provider === 'static').length, 1);

  const dropped = Object.fromEntries(report.dropped.map((d) => [d.labels['instance_id'], d]));
  assert.deepEqual(Object.keys(dropped).sort(), ['i-0c', 'i-0d']);
  assert.equal(dropped['i-0c']?.reason, 'tag pprof.port: "seventy" is not a port');
  assert.equal(dropped['i-0c']?.labels['tag_pprof_port'], 'seventy');
  assert.equal(dropped['i-0d']?.reason, 'instance i-0d has no public IPv4 address (address: public_ip)');
  assert.equal(dropped['i-0d']?.address, undefined);
  assert.deepEqual(fake.requests[0]?.filters, { 'tag:pprof': ['true'], 'instance-state-name': ['running'] });
});

test('targets: a 403 from EC2 is an errors entry and exit 2; the other providers still print', async () => {
  fake.fail(FAILURES.unauthorized);
  const { code, report, stderr } = await dryRun();
  assert.equal(code, 2);
  assert.deepEqual(
    report.targets.map((t) => t.provider),
    ['static'],
  );
  assert.equal(report.errors.length, 1);
  assert.equal(report.errors[0]?.provider, 'ec2');
  assert.equal(report.errors[0]?.source, 'discovery[1]');
  assert.match(report.errors[0]?.error ?? '', /^discovery\[1\]\.ec2: UnauthorizedOperation calling DescribeInstances in eu-west-1: .*needs ec2:DescribeInstances/);
  assert.match(stderr, /UnauthorizedOperation/);
  assert.doesNotMatch(stderr + JSON.stringify(report), /fake-secret-access-key/);
});

test('targets: throttling is retried in the dry run as in the daemon', async () => {
  fake.fail(FAILURES.throttled, { times: 2 });
  const { code, report } = await dryRun();
  assert.equal(code, 0);
  assert.equal(report.targets.filter((t) => t.provider === 'ec2').length, 2);
  assert.deepEqual(
    fake.requests.map((r) => r.status),
    [503, 503, 200],
  );

  fake.requests.length = 0;
  fake.fail(FAILURES.throttled, { times: 3 });
  const failed = await dryRun();
  assert.equal(failed.code, 2);
  assert.match(failed.report.errors[0]?.error ?? '', /RequestLimitExceeded calling DescribeInstances in eu-west-1/);
});
