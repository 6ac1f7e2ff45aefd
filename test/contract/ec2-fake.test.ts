/** The loopback EC2 API answers as EC2 does, for the real SDK and for raw requests. */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import type { DescribeInstancesCommandInput } from '@aws-sdk/client-ec2';
import { request } from 'undici';
import { parseConfig } from '../../src/config/index.js';
import { DiscoveryError } from '../../src/discovery/index.js';
import { createProvider } from '../../src/discovery/factory.js';
import { silentLogger } from '../../src/log.js';
import { FAILURES, fleet, startEc2Fake, useFakeAwsEnv } from '../helpers/ec2-fake.js';
import type { Ec2Fake } from '../helpers/ec2-fake.js';

let fake: Ec2Fake;
let restoreEnv: () => void;
let client: EC2Client;

before(async () => {
  restoreEnv = useFakeAwsEnv({ AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  fake = await startEc2Fake();
  client = new EC2Client({ region: 'us-east-1', endpoint: fake.url, maxAttempts: 1 });
});

after(async () => {
  client.destroy();
  await fake.close();
  restoreEnv();
});

beforeEach(() => {
  fake.clearFailures();
  fake.requests.length = 0;
  fake.setInstances('us-east-1', fleet(12));
});

async function sdkError(input: DescribeInstancesCommandInput, c = client): Promise<{ name: string; status: number | undefined; message: string }> {
  try {
    await c.send(new DescribeInstancesCommand(input));
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  assert.fail('the call should have failed');
}

test('an unsigned request is refused as EC2 refuses it', async () => {
  const res = await request(fake.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=DescribeInstances&Version=2016-11-15' });
  assert.equal(res.statusCode, 401);
  const body = await res.body.text();
  assert.match(body, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<Response><Errors><Error><Code>MissingAuthenticationToken<\/Code><Message>[^<]+<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/);
});

test('the answer has EC2 namespace and shape; the SDK reads it', async () => {
  const out = await client.send(new DescribeInstancesCommand({ MaxResults: 5 }));
  assert.equal(out.Reservations?.length, 5);
  const instance = out.Reservations?.[0]?.Instances?.[0];
  assert.equal(instance?.InstanceId, 'i-00000000000000000');
  assert.equal(instance?.State?.Name, 'running');
  assert.equal(instance?.Placement?.AvailabilityZone, 'us-east-1a');
  assert.deepEqual(instance?.Tags?.find((t) => t.Key === 'pprof'), { Key: 'pprof', Value: 'true' });
  assert.equal(instance?.NetworkInterfaces?.[0]?.Attachment?.DeviceIndex, 0);
  assert.ok(out.NextToken);
  assert.ok(typeof out.$metadata.requestId === 'string');
});

test('instances sharing a reservation come in one reservationSet item', async () => {
  fake.setInstances('us-east-1', [
    { id: 'i-1', reservationId: 'r-a' },
    { id: 'i-2', reservationId: 'r-a' },
    { id: 'i-3', reservationId: 'r-b' },
  ]);
  const out = await client.send(new DescribeInstancesCommand({}));
  assert.deepEqual(
    out.Reservations?.map((r) => [r.ReservationId, r.Instances?.map((i) => i.InstanceId)]),
    [
      ['r-a', ['i-1', 'i-2']],
      ['r-b', ['i-3']],
    ],
  );
});

test('MaxResults outside 5..1000 and a bad NextToken are EC2 400 errors', async () => {
  assert.deepEqual(await sdkError({ MaxResults: 2 }).then((e) => [e.name, e.status]), ['InvalidParameterValue', 400]);
  assert.deepEqual(await sdkError({ MaxResults: 1001 }).then((e) => [e.name, e.status]), ['InvalidParameterValue', 400]);
  assert.deepEqual(await sdkError({ NextToken: 'garbage' }).then((e) => [e.name, e.status]), ['InvalidPaginationToken', 400]);
  assert.deepEqual(await sdkError({ MaxResults: 5, InstanceIds: ['i-1'] }).then((e) => [e.name, e.status]), ['InvalidParameterCombination', 400]);
});

test('an unknown filter name: EC2 says so, and the provider points at the filters', async () => {
  const e = await sdkError({ Filters: [{ Name: 'colour', Values: ['red'] }] });
  assert.deepEqual([e.name, e.status, e.message], ['InvalidParameterValue', 400, "The filter 'colour' is invalid"]);
  const text = `discovery:\n  - ec2: {region: us-east-1, endpoint: "${fake.url}", filters: {colour: red}}\nrepositories:\n  - directory: {path: /tmp/unused}\n`;
  const entry = parseConfig(text, 'test.yaml', { baseDir: '/tmp' }).config.discovery[0]!;
  const provider = await createProvider(entry, 0, { logger: silentLogger() });
  try {
    const err = await provider.refresh(AbortSignal.timeout(10_000)).then(
      () => assert.fail('should fail'),
      (x: unknown) => x,
    );
    assert.ok(err instanceof DiscoveryError);
    assert.equal(err.code, 'InvalidParameterValue');
    assert.match(err.message, /check discovery\[0\]\.ec2\.filters/);
  } finally {
    await provider.close?.();
  }
});

test('filter values take EC2 wildcards', async () => {
  fake.setInstances('us-east-1', [
    { id: 'i-1', tags: { Name: 'api-1' } },
    { id: 'i-2', tags: { Name: 'api-22' } },
    { id: 'i-3', tags: { Name: 'web-1' } },
  ]);
  const out = await client.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:Name', Values: ['api-?', 'web*'] }] }));
  assert.deepEqual(
    out.Reservations?.flatMap((r) => r.Instances?.map((i) => i.InstanceId)),
    ['i-1', 'i-3'],
  );
});

test('a region by endpoint path answers for that region whatever the signature says', async () => {
  fake.setInstances('ap-south-1', fleet(2));
  const byPath = new EC2Client({ region: 'us-east-1', endpoint: fake.endpointFor('ap-south-1'), maxAttempts: 1 });
  try {
    const out = await byPath.send(new DescribeInstancesCommand({}));
    assert.equal(out.Reservations?.length, 2);
    assert.equal(fake.requests[0]?.region, 'ap-south-1');
  } finally {
    byPath.destroy();
  }
});

test('scripted failures come in order, for the calls they match, then stop', async () => {
  fake.fail(FAILURES.throttled, { times: 2 });
  fake.fail(FAILURES.unauthorized, { region: 'eu-west-1' });
  assert.equal((await sdkError({})).name, 'RequestLimitExceeded');
  assert.equal((await sdkError({})).status, 503);
  const out = await client.send(new DescribeInstancesCommand({}));
  assert.equal(out.Reservations?.length, 12);
  assert.deepEqual(
    fake.requests.map((r) => r.status),
    [503, 503, 200],
  );
  const eu = new EC2Client({ region: 'eu-west-1', endpoint: fake.url, maxAttempts: 1 });
  try {
    assert.deepEqual(await sdkError({}, eu).then((e) => [e.name, e.status]), ['UnauthorizedOperation', 403]);
    assert.deepEqual((await eu.send(new DescribeInstancesCommand({}))).Reservations, []);
  } finally {
    eu.destroy();
  }
});
