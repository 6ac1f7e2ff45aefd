/**
 * The EC2 provider with the real AWS SDK against a loopback server that
 * answers the EC2 Query API as EC2 does.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { promisify } from 'node:util';
import { EC2Client } from '@aws-sdk/client-ec2';
import { parseConfig } from '../../src/config/index.js';
import type { Ec2Config } from '../../src/config/index.js';
import { DiscoveryError } from '../../src/discovery/index.js';
import type { Provider } from '../../src/discovery/index.js';
import { createProvider } from '../../src/discovery/factory.js';
import { collectGarbage } from '../helpers/collect-garbage.js';
import { silentLogger } from '../../src/log.js';
import type { Discovered } from '../../src/targets/index.js';
import { ASSUMED_KEY_PREFIX, FAILURES, FAKE_ACCESS_KEY_ID, fleet, startEc2Fake, startImdsFake, useFakeAwsEnv } from '../helpers/ec2-fake.js';
import type { Ec2Fake, FakeInstance } from '../helpers/ec2-fake.js';

let fake: Ec2Fake;
let restoreEnv: () => void;
const open: Provider[] = [];

before(async () => {
  restoreEnv = useFakeAwsEnv();
  fake = await startEc2Fake();
});

after(async () => {
  await Promise.all(open.map((p) => p.close?.() ?? Promise.resolve()));
  await fake.close();
  restoreEnv();
});

beforeEach(() => {
  fake.clearFailures();
  fake.requests.length = 0;
  fake.onRequest = undefined;
  fake.setInstances('us-east-1', []);
  fake.setInstances('eu-west-1', []);
});

/** An ec2 entry as the config loader makes it (defaults filled in), pointed at the fake. */
function entry(yaml: string): Ec2Config {
  const lines = [`endpoint: ${fake.url}`, ...yaml.split('\n').filter((l) => l.trim() !== '')];
  const text = `discovery:\n  - ec2:\n${lines.map((l) => `      ${l}`).join('\n')}\nrepositories:\n  - directory: {path: /tmp/unused}\n`;
  const ec2 = parseConfig(text, 'test.yaml', { baseDir: '/tmp' }).config.discovery[0]?.ec2;
  assert.ok(ec2);
  return ec2;
}

async function provider(yaml: string, source = 0): Promise<Provider> {
  const p = await createProvider({ ec2: entry(yaml) }, source, { logger: silentLogger() });
  open.push(p);
  return p;
}

const refresh = (p: Provider): Promise<Discovered[]> => p.refresh(AbortSignal.timeout(30_000));
const ids = (found: readonly Discovered[]): string[] => found.map((d) => d.labels['instance_id'] ?? '?');

async function failure(p: Provider): Promise<DiscoveryError> {
  try {
    await refresh(p);
  } catch (err) {
    assert.ok(err instanceof DiscoveryError, `expected a DiscoveryError, got ${String(err)}`);
    return err;
  }
  assert.fail('the refresh should have failed');
}

test('pagination: every page, MaxResults 1000, each NextToken sent back once', async () => {
  const instances = fleet(2345);
  fake.setInstances('us-east-1', instances);
  const p = await provider('region: us-east-1');
  const found = await refresh(p);
  assert.equal(found.length, 2345);
  assert.deepEqual(ids(found), instances.map((i) => i.id).sort());
  const calls = fake.requests.filter((r) => r.action === 'DescribeInstances');
  assert.deepEqual(
    calls.map((r) => [r.maxResults, r.nextToken !== undefined, r.instances]),
    [
      [1000, false, 1000],
      [1000, true, 1000],
      [1000, true, 345],
    ],
  );
  assert.equal(new Set(calls.map((r) => r.nextToken)).size, 3);
  for (const r of calls) {
    assert.equal(r.version, '2016-11-15');
    assert.equal(r.region, 'us-east-1');
    assert.equal(r.accessKeyId, FAKE_ACCESS_KEY_ID);
  }
});

test('pagination: each page becomes metadata as it arrives; no earlier page\'s SDK objects are held when the next is asked for', async () => {
  fake.setInstances('us-east-1', fleet(2345, (n) => ({ tags: { Name: `svc-${n % 5}`, team: `t${n % 3}` } })));
  // every answer the SDK hands back, weakly: held only by whoever still uses it
  const answers: WeakRef<object>[] = [];
  const send = Reflect.get(EC2Client.prototype, 'send') as (this: EC2Client, ...a: unknown[]) => Promise<unknown>;
  EC2Client.prototype.send = async function (this: EC2Client, ...args: unknown[]) {
    const out = await send.apply(this, args);
    if (typeof out === 'object' && out !== null) answers.push(new WeakRef(out));
    return out;
  } as EC2Client['send'];
  const heldAtEachCall: number[] = [];
  fake.onRequest = (r) => {
    if (r.action !== 'DescribeInstances') return;
    assert.ok(collectGarbage(), 'this runtime should let the test collect garbage');
    heldAtEachCall.push(answers.filter((a) => a.deref() !== undefined).length);
  };
  try {
    const p = await provider('region: us-east-1\ntag_labels: [team]');
    const found = await refresh(p);
    assert.equal(found.length, 2345);
    assert.deepEqual(found.slice(0, 4).map((d) => d.labels['team']), ['t0', 't1', 't2', 't0']);
  } finally {
    EC2Client.prototype.send = send as EC2Client['send'];
  }
  assert.equal(answers.length, 3);
  assert.deepEqual(heldAtEachCall, [0, 0, 0]);
});

test('filters: the configured filters are sent as given, with running-only added, and EC2 applies them', async () => {
  fake.setInstances('us-east-1', [
    { id: 'i-1', tags: { pprof: 'true', team: 'a' }, vpcId: 'vpc-1' },
    { id: 'i-2', tags: { pprof: 'true', team: 'b' }, vpcId: 'vpc-2' },
    { id: 'i-3', tags: { pprof: 'false', team: 'a' }, vpcId: 'vpc-1' },
    { id: 'i-4', tags: { pprof: 'true' }, vpcId: 'vpc-1' },
    { id: 'i-5', tags: { pprof: 'true', team: 'a' }, vpcId: 'vpc-1', state: 'stopped' },
    { id: 'i-6', tags: { pprof: 'true', team: 'c' }, vpcId: 'vpc-1', type: 'm5.large' },
  ]);
  const p = await provider(`region: us-east-1\nfilters: {"tag:pprof": "true", "tag-key": [team], vpc-id: [vpc-1], instance-type: ["t3.*", "m5.large"]}`);
  assert.deepEqual(ids(await refresh(p)), ['i-1', 'i-6']);
  assert.deepEqual(fake.requests[0]?.filters, {
    'tag:pprof': ['true'],
    'tag-key': ['team'],
    'vpc-id': ['vpc-1'],
    'instance-type': ['t3.*', 'm5.large'],
    'instance-state-name': ['running'],
  });
});

test('running-only: stopped, pending and terminated instances stay out unless the filters ask for a state', async () => {
  fake.setInstances('us-east-1', [
    { id: 'i-run', state: 'running' },
    { id: 'i-stop', state: 'stopped', privateIp: null },
    { id: 'i-pend', state: 'pending' },
    { id: 'i-term', state: 'terminated', privateIp: null },
  ]);
  assert.deepEqual(ids(await refresh(await provider('region: us-east-1'))), ['i-run']);
  assert.deepEqual(fake.requests[0]?.filters, { 'instance-state-name': ['running'] });

  fake.requests.length = 0;
  const both = await refresh(await provider('region: us-east-1\nfilters: {instance-state-name: [running, pending]}'));
  assert.deepEqual(ids(both), ['i-pend', 'i-run']);
  assert.deepEqual(fake.requests[0]?.filters, { 'instance-state-name': ['running', 'pending'] });
});

const withEveryAddress: FakeInstance = {
  id: 'i-full',
  privateIp: '10.0.0.5',
  publicIp: '54.0.0.5',
  privateDns: 'ip-10-0-0-5.ec2.internal',
  publicDns: 'ec2-54-0-0-5.compute-1.amazonaws.com',
  ipv6: '2600:1f18::5',
};
const withNone: FakeInstance = { id: 'i-bare', privateIp: null, publicIp: null, privateDns: null, publicDns: null, ipv6: null };

for (const [kind, expected, missing] of [
  ['private_ip', '10.0.0.5', 'private IPv4 address'],
  ['public_ip', '54.0.0.5', 'public IPv4 address'],
  ['private_dns', 'ip-10-0-0-5.ec2.internal', 'private DNS name'],
  ['public_dns', 'ec2-54-0-0-5.compute-1.amazonaws.com', 'public DNS name'],
  ['ipv6', '2600:1f18::5', 'IPv6 address'],
] as const) {
  test(`address ${kind}: read from EC2's answer; an instance without one has a reason`, async () => {
    fake.setInstances('us-east-1', [withEveryAddress, withNone]);
    const found = await refresh(await provider(`region: us-east-1\naddress: ${kind}`));
    const full = found.find((d) => d.labels['instance_id'] === 'i-full');
    const bare = found.find((d) => d.labels['instance_id'] === 'i-bare');
    assert.equal(full?.address, expected);
    assert.equal(bare?.address, undefined);
    assert.equal(bare?.addressError, `instance i-bare has no ${missing} (address: ${kind})`);
  });
}

test('odd tag characters survive the XML round trip unchanged', async () => {
  const tags: Record<string, string> = {
    Name: 'a & b <c> "d" \'e\'',
    'cost center': 'x, y = {z}',
    'ünïcödé ✓': 'värde 值 🚀',
    'a=b,c': '  padded  ',
    'pprof.label.team name': 'core & co',
    '<tag>': '</value>',
  };
  fake.setInstances('us-east-1', [{ id: 'i-odd', tags }]);
  const [d] = await refresh(await provider('region: us-east-1\ntag_labels: ["cost center", "ünïcödé ✓"]'));
  assert.ok(d);
  assert.equal(d.service, tags['Name']);
  assert.equal(d.labels['cost_center'], 'x, y = {z}');
  assert.equal(d.labels['_n_c_d___'], 'värde 值 🚀');
  assert.equal(d.hidden?.['tag_a_b_c'], '  padded  ');
  assert.equal(d.hidden?.['tag__tag_'], '</value>');
  assert.deepEqual(d.directives, { 'pprof.label.team name': 'core & co' });
  for (const name of [...Object.keys(d.labels), ...Object.keys(d.hidden ?? {})]) assert.match(name, /^[a-zA-Z_][a-zA-Z0-9_]*$/);
});

test('several regions: one entry covers them all; each call is signed for its region', async () => {
  fake.setInstances('us-east-1', fleet(3));
  fake.setInstances('eu-west-1', [{ id: 'i-eu1', az: 'eu-west-1b' }, { id: 'i-eu2', az: 'eu-west-1c' }]);
  const p = await provider('regions: [us-east-1, eu-west-1]');
  const found = await refresh(p);
  assert.equal(found.length, 5);
  assert.deepEqual(
    found.filter((d) => d.labels['region'] === 'eu-west-1').map((d) => [d.labels['instance_id'], d.labels['availability_zone']]),
    [
      ['i-eu1', 'eu-west-1b'],
      ['i-eu2', 'eu-west-1c'],
    ],
  );
  assert.equal(found.filter((d) => d.labels['region'] === 'us-east-1').length, 3);
  assert.deepEqual([...new Set(fake.requests.map((r) => r.region))].sort(), ['eu-west-1', 'us-east-1']);
});

test('several regions: one failing region fails the whole refresh, naming it', async () => {
  fake.setInstances('us-east-1', fleet(3));
  fake.setInstances('eu-west-1', fleet(2));
  fake.fail(FAILURES.unauthorized, { region: 'eu-west-1' });
  const err = await failure(await provider('regions: [us-east-1, eu-west-1]'));
  assert.equal(err.code, 'UnauthorizedOperation');
  assert.match(err.message, /in eu-west-1/);
});

test('a later page failing publishes nothing, never the pages before it', async () => {
  fake.setInstances('us-east-1', fleet(2500));
  fake.fail(FAILURES.unauthorized, { laterPagesOnly: true });
  const err = await failure(await provider('region: us-east-1'));
  assert.equal(err.code, 'UnauthorizedOperation');
  assert.deepEqual(
    fake.requests.map((r) => r.status),
    [200, 403],
  );
});

test('403 UnauthorizedOperation: not retried; the error names the entry, region, code and the permission to grant', async () => {
  fake.setInstances('us-east-1', fleet(3));
  fake.fail(FAILURES.unauthorized, { times: 5 });
  const err = await failure(await provider('region: us-east-1', 2));
  assert.equal(fake.requests.length, 1);
  assert.equal(err.code, 'UnauthorizedOperation');
  assert.equal(err.throttled, false);
  assert.match(err.message, /^discovery\[2\]\.ec2: UnauthorizedOperation calling DescribeInstances in us-east-1: .*needs ec2:DescribeInstances/);
});

test('503 RequestLimitExceeded: retried by the SDK (3 attempts), then a throttled DiscoveryError', async () => {
  fake.setInstances('us-east-1', fleet(3));
  const p = await provider('region: us-east-1');
  fake.fail(FAILURES.throttled, { times: 2 });
  assert.equal((await refresh(p)).length, 3, 'two throttled answers, then success on the third attempt');
  assert.deepEqual(
    fake.requests.map((r) => r.status),
    [503, 503, 200],
  );

  fake.requests.length = 0;
  fake.fail(FAILURES.throttled, { times: 3 });
  const err = await failure(p);
  assert.equal(fake.requests.length, 3);
  assert.equal(err.code, 'RequestLimitExceeded');
  assert.equal(err.throttled, true);
  assert.match(err.message, /RequestLimitExceeded calling DescribeInstances in us-east-1: EC2 is throttling/);
});

test('5xx and dropped connections are retried too', async () => {
  fake.setInstances('us-east-1', fleet(3));
  const p = await provider('region: us-east-1');
  fake.fail(FAILURES.internal);
  fake.fail(FAILURES.reset);
  assert.equal((await refresh(p)).length, 3);
  assert.deepEqual(
    fake.requests.map((r) => r.status),
    [500, 0, 200],
  );
  fake.requests.length = 0;
  fake.fail(FAILURES.unavailable, { times: 3 });
  const err = await failure(p);
  assert.equal(err.code, 'Unavailable');
  assert.equal(err.throttled, false);
  assert.equal(fake.requests.length, 3);
});

test('malformed XML: a DiscoveryError that says the answer was unreadable', async () => {
  fake.setInstances('us-east-1', fleet(3));
  fake.fail(FAILURES.malformed);
  const err = await failure(await provider('region: us-east-1'));
  assert.equal(err.code, 'MalformedResponse');
  assert.match(err.message, /^discovery\[0\]\.ec2: unreadable answer to DescribeInstances in us-east-1/);
  assert.doesNotMatch(err.message, /\$response/);
});

test('an endpoint that does not answer: the error names it', async () => {
  const p = await createProvider({ ec2: { ...entry('region: us-east-1'), endpoint: 'http://127.0.0.1:9' } }, 0, { logger: silentLogger() });
  open.push(p);
  const err = await failure(p);
  assert.equal(err.code, 'ECONNREFUSED');
  assert.match(err.message, /did not answer at http:\/\/127\.0\.0\.1:9/);
});

test('an instance removed between refreshes is gone from the next answer', async () => {
  fake.setInstances('us-east-1', fleet(4));
  const p = await provider('region: us-east-1');
  const first = await refresh(p);
  fake.setInstances('us-east-1', fleet(4).filter((i) => i.id !== first[1]?.labels['instance_id']));
  const second = await refresh(p);
  assert.deepEqual(ids(second), ids(first).filter((_, n) => n !== 1));
  assert.deepEqual(second[0], first[0]);
});

test('region: from AWS_REGION when the entry names none; a clear error when nothing names one', async () => {
  fake.setInstances('eu-west-1', fleet(2));
  process.env['AWS_REGION'] = 'eu-west-1';
  try {
    const found = await refresh(await provider(''));
    assert.equal(found.length, 2);
    assert.equal(found[0]?.labels['region'], 'eu-west-1');
  } finally {
    delete process.env['AWS_REGION'];
  }
  const err = await failure(await provider(''));
  assert.equal(err.code, 'RegionMissing');
  assert.match(err.message, /set region or regions in discovery\[0\]\.ec2/);
});

test('region: on EC2 without one configured, the instance\'s own region from metadata (IMDSv2)', async () => {
  const imds = await startImdsFake('ap-southeast-2');
  fake.setInstances('ap-southeast-2', fleet(2));
  delete process.env['AWS_EC2_METADATA_DISABLED'];
  process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] = imds.url;
  try {
    const found = await refresh(await provider(''));
    assert.deepEqual(
      found.map((d) => d.labels['region']),
      ['ap-southeast-2', 'ap-southeast-2'],
    );
    assert.equal(fake.requests[0]?.region, 'ap-southeast-2');
    assert.deepEqual(imds.requests, ['PUT /latest/api/token', 'GET /latest/meta-data/placement/region (token: yes)']);
  } finally {
    process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
    delete process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'];
    await imds.close();
  }
});

test('no credentials anywhere: a clear error, no secret in it', async () => {
  const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
  delete process.env['AWS_ACCESS_KEY_ID'];
  delete process.env['AWS_SECRET_ACCESS_KEY'];
  try {
    const err = await failure(await provider('region: us-east-1'));
    assert.equal(err.code, 'CredentialsMissing');
    assert.match(err.message, /no AWS credentials for DescribeInstances in us-east-1/);
    assert.equal(fake.requests.length, 0);
  } finally {
    process.env['AWS_ACCESS_KEY_ID'] = saved.id;
    process.env['AWS_SECRET_ACCESS_KEY'] = saved.secret;
  }
});

test('profile: its credentials and its region come from the shared files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-aws-'));
  const saved = { config: process.env['AWS_CONFIG_FILE'], credentials: process.env['AWS_SHARED_CREDENTIALS_FILE'] };
  try {
    await writeFile(join(dir, 'config'), '[default]\nregion = us-east-1\n\n[profile prod]\nregion = eu-west-1\n');
    await writeFile(join(dir, 'credentials'), '[default]\naws_access_key_id = AKIADEFAULT000000001\naws_secret_access_key = d\n\n[prod]\naws_access_key_id = AKIAPROD000000000001\naws_secret_access_key = p\n');
    process.env['AWS_CONFIG_FILE'] = join(dir, 'config');
    process.env['AWS_SHARED_CREDENTIALS_FILE'] = join(dir, 'credentials');
    fake.setInstances('eu-west-1', fleet(2));
    const found = await refresh(await provider('profile: prod'));
    assert.equal(found.length, 2);
    assert.equal(found[0]?.labels['region'], 'eu-west-1');
    assert.deepEqual(
      fake.requests.map((r) => [r.region, r.accessKeyId]),
      [['eu-west-1', 'AKIAPROD000000000001']],
    );
  } finally {
    process.env['AWS_CONFIG_FILE'] = saved.config;
    process.env['AWS_SHARED_CREDENTIALS_FILE'] = saved.credentials;
    await rm(dir, { recursive: true, force: true });
  }
});

test('role_arn: the role is assumed first (with external_id), and EC2 is called with its credentials', async () => {
  fake.setInstances('eu-west-1', fleet(2));
  process.env['AWS_ENDPOINT_URL_STS'] = fake.url;
  try {
    const p = await provider('region: eu-west-1\nrole_arn: arn:aws:iam::123456789012:role/pprof\nexternal_id: ext-42');
    assert.equal((await refresh(p)).length, 2);
    const [assume, describe] = fake.requests;
    assert.equal(assume?.action, 'AssumeRole');
    assert.equal(assume?.service, 'sts');
    assert.equal(assume?.accessKeyId, FAKE_ACCESS_KEY_ID);
    assert.equal(assume?.params['RoleArn'], 'arn:aws:iam::123456789012:role/pprof');
    assert.equal(assume?.params['ExternalId'], 'ext-42');
    assert.equal(describe?.action, 'DescribeInstances');
    assert.equal(describe?.accessKeyId, `${ASSUMED_KEY_PREFIX}pprof`);

    fake.requests.length = 0;
    fake.fail({ kind: 'error', status: 403, code: 'AccessDenied', message: 'not authorized to perform: sts:AssumeRole' }, { action: 'AssumeRole' });
    const err = await failure(await provider('region: eu-west-1\nrole_arn: arn:aws:iam::123456789012:role/other'));
    assert.equal(err.code, 'AccessDenied');
    assert.match(err.message, /AccessDenied assuming role arn:aws:iam::123456789012:role\/other .*sts:AssumeRole/);
    assert.deepEqual(
      fake.requests.map((r) => r.action),
      ['AssumeRole'],
    );
  } finally {
    delete process.env['AWS_ENDPOINT_URL_STS'];
  }
});

test('aborting a refresh stops it', async () => {
  fake.setInstances('us-east-1', fleet(3));
  const p = await provider('region: us-east-1');
  const controller = new AbortController();
  fake.onRequest = () => controller.abort();
  await assert.rejects(p.refresh(controller.signal));
});

test('the SDK loads only when an ec2 entry is created, and prints no Node-version notice', async () => {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const loaded = () => Object.keys(require.cache).some((k) => k.includes('@aws-sdk/client-ec2'));
    const { createProvider } = await import('./src/discovery/factory.ts');
    const logger = (await import('./src/log.ts')).silentLogger();
    await createProvider({ static: { targets: ['127.0.0.1:6060'] } }, 0, { logger });
    const before = loaded();
    const p = await createProvider({ ec2: { region: 'us-east-1', endpoint: 'http://127.0.0.1:9', filters: {}, address: 'private_ip', service_tag: 'Name', tag_labels: [], refresh: 60000, port: 6060 } }, 1, { logger });
    console.log(JSON.stringify({ before, after: loaded() }));
    await p.close();
  `;
  const env = { ...process.env };
  delete env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'];
  const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url).pathname, env });
  assert.deepEqual(JSON.parse(stdout), { before: false, after: true });
  assert.doesNotMatch(stderr, /NodeVersionSupportWarning|AWS SDK for JavaScript/);
});
