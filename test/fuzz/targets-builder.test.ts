import assert from 'node:assert/strict';
import { BlockList, isIP, isIPv4 } from 'node:net';
import { describe, test } from 'node:test';
import type { Instance } from '@aws-sdk/client-ec2';
import fc from 'fast-check';
import type { Config } from '../../src/config/index.js';
import { instanceMetadata } from '../../src/discovery/providers/ec2-metadata.js';
import { buildTargets } from '../../src/targets/index.js';
import type { BuildResult, Discovered, Target } from '../../src/targets/index.js';
import { fuzzParameters } from '../helpers/fuzz.js';
import { config, dockerContainer } from '../helpers/targets.js';

// EC2 tags and Docker labels are written by whoever may tag an instance or
// start a container. Whatever they hold, the builder must not throw, and what
// it builds must stay inside the rules of docs/security.md.

const CONFIGS = [
  config('discovery:\n  - ec2: {}\n  - docker: {}'),
  config('scrape: {interval: 30s}\ndiscovery:\n  - ec2: {scheme: https, port: 7070}\n  - docker: {scheme: https}'),
  config('scrape: {deny_cidrs: [10.0.0.0/8, "::1/128", 169.254.0.0/16], allow_cidrs: [10.0.0.0/8, 127.0.0.0/8, "::/0"]}\ndiscovery:\n  - ec2: {}\n  - docker: {}'),
  config('scrape: {schedule: "*/5 * * * *"}\ndiscovery:\n  - ec2: {}\n  - docker: {}\noverrides:\n  - {match: {team: /^x/}, path: /internal/pprof, scheme: https}'),
];

const hostile = fc.constantFrom(
  '/debug/pprof?x=1', '/a#b', '/../x', '/a/%2e%2e/b', '/.%2E/', '//169.254.169.254/latest', '/a\\b', '/a\r\nX: y', '/a%3f', '/a%2F..', '/%zz', '',
  '/', '/debug/pprof', '/internal/pprof/', '0', '1ms', '999ms', '0s', '1s', '52w', `${'9'.repeat(40)}w`, '1h30m', '-5s', '6060', '65536', '0x1f90', 'http', 'https', 'HTTP', 'gopher',
  'cpu', 'heap,goroutine', 'cpu,,heap', ',', '10.0.0.99:6060', 'ec2', 'i-0other', '\u0000', '\u202e', '💥', ' ',
);
const value = fc.oneof(hostile, fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ maxLength: 12 }));
const pprofKey = fc.constantFrom(
  'pprof.port', 'pprof.path', 'pprof.scheme', 'pprof.service', 'pprof.profiles', 'pprof.interval', 'pprof.scrape',
  'pprof.label.instance', 'pprof.label.provider', 'pprof.label.instance_id', 'pprof.label.region', 'pprof.label.container_id', 'pprof.label.image',
  'pprof.label.instance-id', 'pprof.label.team', 'pprof.label.', 'pprof.label.0x', 'Name', 'com.docker.compose.service', 'com.docker.compose.project',
);
const key = fc.oneof(pprofKey, pprofKey.map((k) => `${k}${'\u0000'}`), fc.string({ unit: 'binary', maxLength: 10 }), fc.string({ maxLength: 10 }).map((s) => `pprof.label.${s}`));
const metadata = fc.dictionary(key, value, { maxKeys: 8 });

const octet = fc.integer({ min: 0, max: 255 });
const address = fc.oneof(
  fc.tuple(octet, octet).map(([a, b]) => `169.254.${a}.${b}`),
  fc.tuple(octet, octet).map(([a, b]) => `::ffff:169.254.${a}.${b}`),
  fc.tuple(octet, octet, octet).map(([a, b, c]) => `10.${a}.${b}.${c}`),
  fc.tuple(octet, octet, octet, octet).map((o) => o.join('.')),
  fc.constantFrom('127.0.0.1', '::1', 'fe80::1', 'fd00:ec2::254', 'fd12::7', '2852039166', '0xa9fea9fe', '999.1.1.1', 'ip-10-0-0-7.internal', '::ffff:a9fe:a9fe', '[::1]', ''),
);

function ec2Found(ip: string, tags: Record<string, string>, n = 0): { found: Discovered; own: Record<string, string> } {
  const instance: Instance = {
    InstanceId: `i-${n}`,
    InstanceType: 'm5.large',
    ImageId: 'ami-1',
    VpcId: 'vpc-1',
    Placement: { AvailabilityZone: 'eu-west-1a' },
    PrivateIpAddress: ip,
    Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  };
  const own = { provider: 'ec2', instance_id: `i-${n}`, instance_type: 'm5.large', image_id: 'ami-1', vpc_id: 'vpc-1', availability_zone: 'eu-west-1a', region: 'eu-west-1' };
  return { found: instanceMetadata(instance, 'eu-west-1', { address: 'private_ip', serviceTag: 'Name', tagLabels: ['team'] }), own };
}

function dockerFound(ip: string, labels: Record<string, string>, n = 0): { found: Discovered; own: Record<string, string> } {
  const id = `${n}`.padStart(12, '0');
  // compose labels come from the container itself: only pprof.label.* may not replace them
  const compose: Record<string, string> = {};
  if (labels['com.docker.compose.project']) compose['compose_project'] = labels['com.docker.compose.project'];
  if (labels['com.docker.compose.service']) compose['compose_service'] = labels['com.docker.compose.service'];
  return { found: dockerContainer(labels, ip, id), own: { provider: 'docker', container_id: id, container_name: 'api-1', image: 'api:1', ...compose } };
}

/** The labels docs/security.md says only the daemon and the file set. */
const OWNED = {
  ec2: ['provider', 'instance_id', 'instance_type', 'availability_zone', 'region', 'vpc_id', 'image_id'],
  docker: ['provider', 'container_name', 'container_id', 'image', 'compose_project', 'compose_service'],
  static: ['provider'],
  file: ['provider'],
  http: ['provider'],
  dns: ['provider'],
} as const;

/** The config's deny and allow lists, read independently of the code under test. */
function refused(c: Config, ip: string): boolean {
  const list = (cidrs: readonly string[]): BlockList => {
    const b = new BlockList();
    for (const cidr of cidrs) {
      const [net = '', bits] = cidr.split('/');
      b.addSubnet(net, Number(bits ?? (isIPv4(net) ? 32 : 128)), isIPv4(net) ? 'ipv4' : 'ipv6');
    }
    return b;
  };
  const family = isIPv4(ip) ? 'ipv4' : 'ipv6';
  if (list(c.scrape.deny_cidrs).check(ip, family)) return true;
  return c.scrape.allow_cidrs !== undefined && !list(c.scrape.allow_cidrs).check(ip, family);
}

const PROVIDERS = { ec2: { make: ec2Found, source: 0, noun: 'tag' }, docker: { make: dockerFound, source: 1, noun: 'label' } } as const;

/** Every rule of docs/security.md that a built target or a dropped one must keep. */
function checkResult(c: Config, result: BuildResult, owns: readonly Record<string, string>[], configScheme: 'http' | 'https'): void {
  for (const d of result.dropped) assert.ok(typeof d.reason === 'string' && d.reason.trim() !== '', 'a dropped target has a reason');
  for (const t of result.targets) {
    const idLabel = t.provider === 'ec2' ? 'instance_id' : 'container_id';
    const own = owns.find((o) => o[idLabel] === t.labels[idLabel]);
    assert.ok(own, `the target's own id label survives: ${JSON.stringify(t.labels)}`);
    checkTarget(c, t, own, configScheme);
  }
}

function checkTarget(c: Config, t: Target, own: Record<string, string>, configScheme: 'http' | 'https'): void {
  if (t.timing.kind === 'interval') assert.ok(t.timing.ms >= 1000 && Number.isSafeInteger(t.timing.ms), `interval ${t.timing.ms}`);
  assert.equal(t.labels['instance'], t.address, 'instance is the address');
  for (const name of OWNED[t.provider]) {
    assert.equal(t.labels[name], own[name], `owned label ${name}`);
  }
  if (configScheme === 'https') assert.equal(t.scheme, 'https', 'no downgrade from the https the file set');
  for (const p of t.profiles) {
    const raw = p.url.slice(`${t.scheme}://${t.address}`.length);
    assert.ok(p.url.startsWith(`${t.scheme}://${t.address}/`), p.url);
    const [path = '', query, ...more] = raw.split('?');
    assert.equal(more.length, 0, `one ? at most: ${p.url}`);
    assert.equal(query, p.seconds === undefined ? undefined : `seconds=${p.seconds}`, `the only query is ?seconds=N: ${p.url}`);
    assert.ok(!raw.includes('#'), `no fragment: ${p.url}`);
    assert.ok(!path.startsWith('//'), `no network-path: ${p.url}`);
    const segments = path.split('/').map((s) => s.replace(/%2e/gi, '.'));
    assert.ok(!segments.includes('..') && !segments.includes('.'), `no dot segments: ${p.url}`);
    // the request goes where the URL says: the parser changes nothing in the path
    const u = new URL(p.url);
    assert.equal(u.pathname, path, `path as sent: ${p.url}`);
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    if (isIP(host) !== 0) assert.ok(!refused(c, host), `address ${host} is denied`);
  }
}

describe('target builder under random tags and labels', () => {
  test('never throws; built targets keep every rule; dropped ones say why', () => {
    fc.assert(
      fc.property(fc.constantFrom('ec2', 'docker'), fc.integer({ min: 0, max: CONFIGS.length - 1 }), fc.array(fc.tuple(address, metadata), { minLength: 1, maxLength: 4 }), (kind, ci, items) => {
        const c = CONFIGS[ci] as Config;
        const p = PROVIDERS[kind];
        const built = items.map(([ip, meta], n) => p.make(ip, meta, n));
        const result = buildTargets(c, [{ source: p.source, provider: kind, directiveNoun: p.noun, targets: built.map((b) => b.found) }]);
        assert.equal(result.targets.length + result.dropped.length, items.length);
        const configScheme = c.discovery[p.source]?.[kind]?.scheme ?? 'http';
        checkResult(c, result, built.map((b) => b.own), configScheme);
      }),
      fuzzParameters(3000),
    );
  });

  // What the property found on the builder before these rules, kept as plain cases.
  test('findings', () => {
    const c = CONFIGS[0] as Config;
    const cases: [string, Record<string, string>, RegExp][] = [
      ['10.0.0.7', { 'pprof.path': '/debug/pprof?x=' }, /^tag pprof\.path: .* has a \? in it/],
      ['10.0.0.7', { 'pprof.path': '/a#' }, /^tag pprof\.path: .* has a # in it/],
      ['10.0.0.7', { 'pprof.path': '/..' }, /segment/],
      ['10.0.0.7', { 'pprof.path': '//x' }, /starts with \/\//],
      ['10.0.0.7', { 'pprof.path': '/\u0000' }, /control character/],
      ['10.0.0.7', { 'pprof.interval': '1ms' }, /below the 1s minimum interval/],
      ['10.0.0.7', { 'pprof.interval': `${'9'.repeat(400)}w` }, /is not a duration/],
      ['10.0.0.7', { 'pprof.label.instance': 'x' }, /"instance" is a label the daemon owns/],
      ['10.0.0.7', { 'pprof.label.region': 'x' }, /"region" is a label the daemon owns/],
      ['169.254.0.1', {}, /^address 169\.254\.0\.1 is in scrape\.deny_cidrs 169\.254\.0\.0\/16$/],
      ['::ffff:169.254.0.1', {}, /is in scrape\.deny_cidrs 169\.254\.0\.0\/16$/],
      ['0xa9fea9fe', {}, /^address 0xa9fea9fe \(169\.254\.169\.254\) is in scrape\.deny_cidrs/],
      ['999.1.1.1', {}, /is not a valid host name or IP address/],
    ];
    for (const [ip, tags, reason] of cases) {
      const { found } = ec2Found(ip, tags);
      const { targets, dropped } = buildTargets(c, [{ source: 0, provider: 'ec2', directiveNoun: 'tag', targets: [found] }]);
      assert.equal(targets.length, 0, `${ip} ${JSON.stringify(tags)}`);
      assert.match(dropped[0]?.reason ?? '', reason);
    }
    const https = CONFIGS[1] as Config;
    const { found } = ec2Found('10.0.0.7', { 'pprof.scheme': 'http' });
    assert.match(buildTargets(https, [{ source: 0, provider: 'ec2', directiveNoun: 'tag', targets: [found] }]).dropped[0]?.reason ?? '', /^tag pprof\.scheme: "http" would turn/);
  });
});
