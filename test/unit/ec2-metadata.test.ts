import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Instance } from '@aws-sdk/client-ec2';
import { parseConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/index.js';
import { filtersOf, instanceMetadata } from '../../src/discovery/providers/ec2-metadata.js';
import type { MetadataOptions } from '../../src/discovery/providers/ec2-metadata.js';
import { buildTargets } from '../../src/targets/index.js';
import type { Discovered } from '../../src/targets/index.js';

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function instance(extra: Partial<Instance> = {}, tags: Record<string, string> = {}): Instance {
  return {
    InstanceId: 'i-0abc',
    InstanceType: 'm5.large',
    ImageId: 'ami-1',
    VpcId: 'vpc-1',
    SubnetId: 'subnet-1',
    State: { Name: 'running', Code: 16 },
    Placement: { AvailabilityZone: 'eu-west-1a' },
    PrivateIpAddress: '10.0.0.7',
    PrivateDnsName: 'ip-10-0-0-7.eu-west-1.compute.internal',
    Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    ...extra,
  };
}

const options = (o: Partial<MetadataOptions> = {}): MetadataOptions => ({ address: 'private_ip', serviceTag: 'Name', tagLabels: [], ...o });

function config(ec2: string, rest = ''): Config {
  const text = `discovery:\n  - ec2:\n${ec2
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n')}\nrepositories:\n  - directory: {path: /tmp/unused}\n${rest}`;
  return parseConfig(text, 'test.yaml', { baseDir: '/tmp' }).config;
}

function build(cfg: Config, found: Discovered[]): ReturnType<typeof buildTargets> {
  return buildTargets(cfg, [{ source: 0, provider: 'ec2', directiveNoun: 'tag', targets: found }]);
}

test('filters: the configured ones as sent, running-only added', () => {
  assert.deepEqual(filtersOf({ filters: { 'tag:pprof': ['true'], 'instance-type': ['m5.large', 't3.*'] } }), [
    { Name: 'tag:pprof', Values: ['true'] },
    { Name: 'instance-type', Values: ['m5.large', 't3.*'] },
    { Name: 'instance-state-name', Values: ['running'] },
  ]);
  assert.deepEqual(filtersOf({ filters: {} }), [{ Name: 'instance-state-name', Values: ['running'] }]);
});

test('filters: a state filter of the user replaces running-only', () => {
  assert.deepEqual(filtersOf({ filters: { 'instance-state-name': ['running', 'pending'] } }), [{ Name: 'instance-state-name', Values: ['running', 'pending'] }]);
  assert.deepEqual(filtersOf({ filters: { 'instance-state-code': ['16'] } }), [{ Name: 'instance-state-code', Values: ['16'] }]);
});

test('labels: the instance metadata, region, and the service from the Name tag', () => {
  const d = instanceMetadata(instance({}, { Name: 'billing', team: 'core' }), 'eu-west-1', options());
  assert.equal(d.address, '10.0.0.7');
  assert.deepEqual(d.labels, {
    instance_id: 'i-0abc',
    instance_type: 'm5.large',
    availability_zone: 'eu-west-1a',
    region: 'eu-west-1',
    vpc_id: 'vpc-1',
    image_id: 'ami-1',
  });
  assert.equal(d.service, 'billing');
  assert.equal(d.fallbackService, 'i-0abc');
  assert.equal(d.hidden?.['tag_team'], 'core');
  assert.equal(d.hidden?.['tag_Name'], 'billing');
  assert.equal(d.directives, undefined);
});

test('service: service_tag picks the tag; without it (or empty) the instance id is the fallback', () => {
  assert.equal(instanceMetadata(instance({}, { Name: 'x', app: 'api' }), 'r', options({ serviceTag: 'app' })).service, 'api');
  const none = instanceMetadata(instance({}, { app: 'api' }), 'r', options());
  assert.equal(none.service, undefined);
  assert.equal(none.fallbackService, 'i-0abc');
  assert.equal(instanceMetadata(instance({}, { Name: '  ' }), 'r', options()).service, undefined);
  const [target] = build(config('port: 6060'), [none]).targets;
  assert.equal(target?.service, 'i-0abc');
});

test('tag_labels: the named tags ship as labels, sanitized; the others stay hidden; metadata wins over a tag', () => {
  const d = instanceMetadata(instance({}, { team: 'core', 'cost center': '42', env: 'prod', region: 'spoofed' }), 'eu-west-1', options({ tagLabels: ['team', 'cost center', 'missing', 'region'] }));
  assert.equal(d.labels['team'], 'core');
  assert.equal(d.labels['cost_center'], '42');
  assert.equal(d.labels['region'], 'eu-west-1');
  assert.equal(d.labels['env'], undefined);
  assert.equal(d.hidden?.['tag_env'], 'prod');
  assert.ok(!('missing' in d.labels));
});

test('directives: pprof.* tags, verbatim', () => {
  const d = instanceMetadata(instance({}, { 'pprof.port': '7070', 'pprof.label.tier': 'gold', pprof: 'true' }), 'r', options());
  assert.deepEqual(d.directives, { 'pprof.label.tier': 'gold', 'pprof.port': '7070' });
  assert.equal(d.hidden?.['tag_pprof_port'], '7070');
});

const addressCases: { kind: MetadataOptions['address']; present: Partial<Instance>; expected: string; missing: Partial<Instance>; reason: RegExp }[] = [
  { kind: 'private_ip', present: { PrivateIpAddress: '10.1.2.3' }, expected: '10.1.2.3', missing: { PrivateIpAddress: undefined }, reason: /no private IPv4 address/ },
  { kind: 'public_ip', present: { PublicIpAddress: '54.1.2.3' }, expected: '54.1.2.3', missing: {}, reason: /no public IPv4 address \(address: public_ip\)/ },
  { kind: 'private_dns', present: { PrivateDnsName: 'ip-10-1-2-3.internal' }, expected: 'ip-10-1-2-3.internal', missing: { PrivateDnsName: '' }, reason: /no private DNS name/ },
  { kind: 'public_dns', present: { PublicDnsName: 'ec2-54-1-2-3.compute.amazonaws.com' }, expected: 'ec2-54-1-2-3.compute.amazonaws.com', missing: { PublicDnsName: '' }, reason: /no public DNS name/ },
  { kind: 'ipv6', present: { Ipv6Address: '2001:db8::7' }, expected: '2001:db8::7', missing: {}, reason: /no IPv6 address/ },
];

for (const c of addressCases) {
  test(`address ${c.kind}: used when present, a drop reason when missing`, () => {
    const d = instanceMetadata(instance(c.present), 'r', options({ address: c.kind }));
    assert.equal(d.address, c.expected);
    assert.equal(d.addressError, undefined);
    const gone = instanceMetadata(instance(c.missing), 'r', options({ address: c.kind }));
    assert.equal(gone.address, undefined);
    assert.match(gone.addressError ?? '', c.reason);
    assert.match(gone.addressError ?? '', /i-0abc/);
    const result = build(config(`address: ${c.kind}`), [d, gone]);
    assert.equal(result.targets.length, 1);
    assert.equal(result.dropped.length, 1);
    assert.match(result.dropped[0]?.reason ?? '', c.reason);
    assert.equal(result.dropped[0]?.labels['instance_id'], 'i-0abc');
  });
}

test('address ipv6: from the primary interface when the instance field is absent; brackets in the target address', () => {
  const d = instanceMetadata(
    instance({
      NetworkInterfaces: [
        { Attachment: { DeviceIndex: 1 }, Ipv6Addresses: [{ Ipv6Address: '2001:db8::99' }] },
        { Attachment: { DeviceIndex: 0 }, Ipv6Addresses: [{ Ipv6Address: '2001:db8::2' }, { Ipv6Address: '2001:db8::1', IsPrimaryIpv6: true }] },
      ],
    }),
    'r',
    options({ address: 'ipv6' }),
  );
  assert.equal(d.address, '2001:db8::1');
  const [target] = build(config('address: ipv6'), [d]).targets;
  assert.equal(target?.address, '[2001:db8::1]:6060');
  assert.equal(target?.profiles[0]?.url.startsWith('http://[2001:db8::1]:6060/debug/pprof/'), true);
});

test('tag overrides: every pprof.* tag is applied', () => {
  const d = instanceMetadata(
    instance({}, {
      Name: 'from-name',
      'pprof.port': '7070',
      'pprof.path': '/internal/pprof/',
      'pprof.scheme': 'https',
      'pprof.service': 'billing',
      'pprof.profiles': 'cpu, heap',
      'pprof.interval': '30s',
      'pprof.label.tier': 'gold',
      'pprof.label.cost center': 'x=1,y={2}',
    }),
    'eu-west-1',
    options(),
  );
  const { targets, dropped } = build(config('port: 6060'), [d]);
  assert.deepEqual(dropped, []);
  const t = targets[0]!;
  assert.equal(t.address, '10.0.0.7:7070');
  assert.equal(t.scheme, 'https');
  assert.equal(t.service, 'billing');
  assert.deepEqual(t.timing, { kind: 'interval', ms: 30_000 });
  assert.deepEqual(
    t.profiles.map((p) => [p.type, p.url]),
    [
      ['cpu', 'https://10.0.0.7:7070/internal/pprof/profile?seconds=27'],
      ['heap', 'https://10.0.0.7:7070/internal/pprof/heap'],
    ],
  );
  assert.equal(t.labels['tier'], 'gold');
  assert.equal(t.labels['cost_center'], 'x=1,y={2}');
  assert.equal(t.labels['provider'], 'ec2');
  assert.equal(t.labels['instance_id'], 'i-0abc');
});

const badTags: [string, string, RegExp][] = [
  ['pprof.port', 'seventy', /^tag pprof\.port: "seventy" is not a port$/],
  ['pprof.port', '70000', /^tag pprof\.port: "70000" is out of range 1\.\.65535$/],
  ['pprof.path', 'debug/pprof', /^tag pprof\.path: "debug\/pprof" is not a path/],
  ['pprof.scheme', 'ftp', /^tag pprof\.scheme: "ftp" is not http or https$/],
  ['pprof.service', ' ', /^tag pprof\.service: " " is empty$/],
  ['pprof.profiles', 'cpu,flame', /^tag pprof\.profiles: "cpu,flame" names unknown profile type flame/],
  ['pprof.profiles', ' , ', /^tag pprof\.profiles: " , " names no profile type$/],
  ['pprof.interval', 'often', /^tag pprof\.interval: "often" is not a duration/],
];

for (const [key, value, reason] of badTags) {
  test(`tag overrides: ${key}=${JSON.stringify(value)} drops that instance only, with the tag and value in the reason`, () => {
    const bad = instanceMetadata(instance({ InstanceId: 'i-bad' }, { [key]: value }), 'r', options());
    const good = instanceMetadata(instance({ InstanceId: 'i-good', PrivateIpAddress: '10.0.0.8' }), 'r', options());
    const { targets, dropped } = build(config('port: 6060'), [bad, good]);
    assert.deepEqual(
      targets.map((t) => t.labels['instance_id']),
      ['i-good'],
    );
    assert.equal(dropped.length, 1);
    assert.match(dropped[0]!.reason, reason);
    assert.equal(dropped[0]!.labels['instance_id'], 'i-bad');
    assert.equal(dropped[0]!.labels[`tag_${key.replace(/\./g, '_')}`], value);
  });
}

test('overrides: rules match hidden tag_<name> labels without shipping them', () => {
  const cfg = config('port: 6060', 'overrides:\n  - match: {tag_team: core}\n    port: 9090\n  - match: {tag_env: /^dev/}\n    drop: true\n');
  const core = instanceMetadata(instance({ InstanceId: 'i-1' }, { team: 'core' }), 'r', options());
  const dev = instanceMetadata(instance({ InstanceId: 'i-2', PrivateIpAddress: '10.0.0.9' }, { env: 'dev-1' }), 'r', options());
  const { targets, dropped } = build(cfg, [core, dev]);
  assert.equal(targets.length, 1);
  assert.equal(targets[0]?.address, '10.0.0.7:9090');
  assert.equal(targets[0]?.labels['tag_team'], undefined);
  assert.match(dropped[0]?.reason ?? '', /dropped by overrides\[1\]/);
});

test('odd tag characters never break a target or a label', () => {
  const tags: Record<string, string> = {
    'Name': 'my service, v2 {beta}',
    'cost center': 'a b',
    'a=b': 'c=d',
    'x,y': '1,2',
    '{braces}': '{}',
    'ünïcödé': 'värde ✓',
    '9lives': 'cat',
    'aws:cloudformation:stack-name': 'prod-stack',
    '===': 'only symbols',
    'quote"s': '"quoted" \'too\'',
    'line\nbreak': 'multi\nline',
    'team id': 'spaced',
    'team_id': 'exact',
    'pprof.label.ünï cödé': 'v',
    'pprof.label.': 'no name',
  };
  const d = instanceMetadata(instance({}, tags), 'eu-west-1', options({ tagLabels: Object.keys(tags) }));
  for (const name of [...Object.keys(d.labels), ...Object.keys(d.hidden ?? {})]) assert.match(name, LABEL_NAME, `label name ${JSON.stringify(name)}`);
  assert.equal(d.hidden?.['tag_cost_center'], 'a b');
  assert.equal(d.hidden?.['tag_a_b'], 'c=d');
  assert.equal(d.hidden?.['tag_x_y'], '1,2');
  assert.equal(d.hidden?.['tag__braces_'], '{}');
  assert.equal(d.hidden?.['tag__n_c_d_'], 'värde ✓');
  assert.equal(d.hidden?.['tag_9lives'], 'cat');
  assert.equal(d.hidden?.['tag_aws_cloudformation_stack_name'], 'prod-stack');
  assert.equal(d.hidden?.['tag_team_id'], 'exact', 'the tag already spelled as a label name wins a collision');
  assert.equal(d.labels['_9lives'], 'cat');
  assert.equal(d.service, 'my service, v2 {beta}');

  const { targets, dropped } = build(config('port: 6060'), [d]);
  assert.deepEqual(dropped, []);
  const t = targets[0]!;
  assert.equal(t.service, 'my service, v2 {beta}');
  for (const [name, value] of Object.entries(t.labels)) {
    assert.match(name, LABEL_NAME);
    assert.equal(typeof value, 'string');
  }
  assert.equal(t.labels['a_b'], 'c=d');
  assert.equal(t.labels['x_y'], '1,2');
  assert.equal(t.labels['quote_s'], '"quoted" \'too\'');
  assert.equal(t.labels['line_break'], 'multi\nline');
  assert.equal(t.labels['_n__c_d_'], 'v');
  assert.equal(t.address, '10.0.0.7:6060');
});

test('tag order does not change the answer', () => {
  const a = instanceMetadata(instance({}, { 'team id': '1', team_id: '2', b: 'x' }), 'r', options());
  const tagsReversed = instance({}, {}).Tags;
  const b = instanceMetadata(instance({ Tags: [{ Key: 'b', Value: 'x' }, { Key: 'team_id', Value: '2' }, { Key: 'team id', Value: '1' }, ...(tagsReversed ?? [])] }), 'r', options());
  assert.equal(JSON.stringify(a), JSON.stringify(b));
});
