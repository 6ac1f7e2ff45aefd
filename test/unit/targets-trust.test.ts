import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import type { Config } from '../../src/config/index.js';
import { instanceMetadata } from '../../src/discovery/providers/ec2-metadata.js';
import { clientSettingsFor, createTargetClient } from '../../src/http/index.js';
import { scrapeProfile } from '../../src/scrape/scraper.js';
import { buildTargets, pathProblem } from '../../src/targets/index.js';
import type { Target } from '../../src/targets/index.js';
import { config, configErrors, dockerContainer, group, staticGroups } from '../helpers/targets.js';

function ec2Instance(ip: string, tags: Record<string, string> = {}) {
  return instanceMetadata(
    { InstanceId: 'i-0abc', InstanceType: 'm5.large', Placement: { AvailabilityZone: 'eu-west-1a' }, PrivateIpAddress: ip, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
    'eu-west-1',
    { address: 'private_ip', serviceTag: 'Name', tagLabels: [] },
  );
}

describe('pprof.path is a path', () => {
  const hostile: [string, RegExp][] = [
    ['/debug/pprof?x=1', /has a \? in it/],
    ['/debug/pprof#frag', /has a # in it/],
    ['/debug/../../admin', /has a "\.\." segment/],
    ['/a/./b', /has a "\." segment/],
    ['/a/%2e%2E/b', /has a "%2e%2E" segment/],
    ['/a/.%2e', /has a "\.%2e" segment/],
    ['//169.254.169.254/latest', /starts with \/\//],
    ['/a\\..\\b', /has a backslash/],
    ['/a\r\nHost: evil', /control character/],
    ['/a\u0000', /control character/],
    ['/a%3fx=1', /escaped/],
    ['/a%2f..', /escaped/],
    ['/a%zz', /does not start an escape/],
    ['/a b', /has " " in it/],
    ['/débug', /has "é" in it/],
    ['debug', /is not a path \(it must start with \/\)/],
  ];
  for (const [value, reason] of hostile) {
    test(`tag pprof.path=${JSON.stringify(value)} drops the instance with a reason`, () => {
      const c = config('discovery:\n  - ec2: {}');
      const { targets, dropped } = buildTargets(c, group(c, [ec2Instance('10.0.0.7', { 'pprof.path': value }), ec2Instance('10.0.0.8')]));
      assert.deepEqual(targets.map((t) => t.address), ['10.0.0.8:6060']);
      assert.equal(dropped.length, 1);
      assert.ok(dropped[0]!.reason.startsWith(`tag pprof.path: ${JSON.stringify(value)} `), dropped[0]!.reason);
      assert.match(dropped[0]!.reason, reason);
    });
  }

  test('a Docker label is held to the same rule', () => {
    const c = config('discovery:\n  - docker: {}');
    const { dropped } = buildTargets(c, group(c, [dockerContainer({ 'pprof.path': '/x?y=' })], 'docker'));
    assert.match(dropped[0]?.reason ?? '', /^label pprof\.path: "\/x\?y=" has a \? in it/);
  });

  test('plain paths pass, escapes of ordinary characters included', () => {
    for (const p of ['/', '/debug/pprof', '/internal/pprof/', '/a-b_c.d~e/%20x/@:;=', '/v1/..x/x..']) assert.equal(pathProblem(p), undefined, p);
  });

  test('the config file is held to the same rule, as a config error', () => {
    const errors = configErrors(`
profiles: {heap: {path: "/debug/pprof/heap?gc=1"}}
discovery:
  - ec2: {path: "/a/../b"}
  - static: {targets: ["http://h:1/a%2F..%2Fb"]}
overrides:
  - {match: {a: b}, path: "//evil"}
`);
    assert.equal(errors.length, 4, errors.join('\n'));
    assert.match(errors[0] ?? '', /profiles\.heap\.path: path "\/debug\/pprof\/heap\?gc=1" has a \? in it: a path cannot carry a query \(the daemon adds \?seconds=N itself\)$/);
    assert.match(errors[1] ?? '', /discovery\[0\]\.ec2\.path: path "\/a\/\.\.\/b" has a "\.\." segment/);
    assert.match(errors[2] ?? '', /discovery\[1\]\.static\.targets\[0\]: path "\/a%2F\.\.%2Fb" of "http:\/\/h:1\/a%2F\.\.%2Fb" has an escaped/);
    assert.match(errors[3] ?? '', /overrides\[0\]\.path: path "\/\/evil" starts with \/\//);
  });
});

describe('scrape.deny_cidrs and allow_cidrs', () => {
  test('by default the metadata addresses are refused, in every spelling, whoever names them', async () => {
    const c = config(`
discovery:
  - ec2: {}
  - static: {targets: ["169.254.169.254:80", "http://[fd00:ec2::254]/latest", "[fe80::1]:6060", "2852039166", "127.0.0.1:6060", "[::1]:6060"]}
`);
    const ec2 = [ec2Instance('169.254.169.254'), ec2Instance('::ffff:169.254.169.254'), ec2Instance('::ffff:a9fe:a9fe'), ec2Instance('10.0.0.7')];
    const { targets, dropped } = buildTargets(c, [...group(c, ec2), ...(await staticGroups(c))]);
    assert.deepEqual(
      dropped.map((d) => d.reason),
      [
        'address 169.254.169.254 is in scrape.deny_cidrs 169.254.0.0/16',
        'address ::ffff:169.254.169.254 is in scrape.deny_cidrs 169.254.0.0/16',
        'address ::ffff:a9fe:a9fe is in scrape.deny_cidrs 169.254.0.0/16',
        'address 169.254.169.254 is in scrape.deny_cidrs 169.254.0.0/16',
        'address fd00:ec2::254 is in scrape.deny_cidrs fd00:ec2::254/128',
        'address fe80::1 is in scrape.deny_cidrs fe80::/10',
        'address 2852039166 (169.254.169.254) is in scrape.deny_cidrs 169.254.0.0/16',
      ],
    );
    assert.deepEqual(dropped.map((d) => d.address), ['169.254.169.254:6060', '[::ffff:169.254.169.254]:6060', '[::ffff:a9fe:a9fe]:6060', '169.254.169.254:80', '[fd00:ec2::254]:6060', '[fe80::1]:6060', '2852039166:6060']);
    // loopback is not denied by default: the embedded default and host-network containers use it
    assert.deepEqual(targets.map((t) => t.address), ['10.0.0.7:6060', '127.0.0.1:6060', '[::1]:6060']);
  });

  test('the final address is checked: after tags and overrides', () => {
    const c = config(`
scrape: {deny_cidrs: [10.0.0.0/8]}
discovery:
  - ec2: {}
`);
    const { targets, dropped } = buildTargets(c, group(c, [ec2Instance('10.0.0.7', { 'pprof.port': '7070' }), ec2Instance('192.168.1.1')]));
    assert.deepEqual(dropped.map((d) => [d.address, d.reason]), [['10.0.0.7:7070', 'address 10.0.0.7 is in scrape.deny_cidrs 10.0.0.0/8']]);
    assert.deepEqual(targets.map((t) => t.address), ['192.168.1.1:6060']);
  });

  test('a deny_cidrs list replaces the default; loopback can be denied; allow_cidrs keeps only its ranges', () => {
    const c = config(`
scrape:
  deny_cidrs: [169.254.0.0/16, "fe80::/10", "fd00:ec2::254/128", 127.0.0.0/8, "::1/128"]
  allow_cidrs: [10.0.0.0/16, "fd00::/8"]
discovery:
  - ec2: {}
`);
    const found = ['127.0.0.1', '::1', '10.0.3.4', '10.1.0.1', 'fd00:ec2::254', 'fd12::1', 'ip-10-0-0-7.internal'].map((ip) => ec2Instance(ip));
    const { targets, dropped } = buildTargets(c, group(c, found));
    assert.deepEqual(dropped.map((d) => d.reason), [
      'address 127.0.0.1 is in scrape.deny_cidrs 127.0.0.0/8',
      'address ::1 is in scrape.deny_cidrs ::1/128',
      'address 10.1.0.1 is not in scrape.allow_cidrs (10.0.0.0/16, fd00::/8)',
      'address fd00:ec2::254 is in scrape.deny_cidrs fd00:ec2::254/128',
    ]);
    // a host name is checked when it resolves, at connect time
    assert.deepEqual(targets.map((t) => t.address), ['10.0.3.4:6060', '[fd12::1]:6060', 'ip-10-0-0-7.internal:6060']);

    const none = config('scrape: {deny_cidrs: []}\ndiscovery:\n  - ec2: {}');
    assert.equal(buildTargets(none, group(none, [ec2Instance('169.254.169.254')])).targets.length, 1);
  });

  test('a bad CIDR is a config error naming it', () => {
    const errors = configErrors('scrape: {deny_cidrs: [169.254.0.0/33, "metadata"], allow_cidrs: []}');
    assert.deepEqual(
      errors.map((e) => e.replace(/^test\.yaml:\d+:\d+: /, '')),
      ['scrape.deny_cidrs[0]: "169.254.0.0/33" has prefix length "33": use 0..32', 'scrape.deny_cidrs[1]: "metadata" is not a CIDR (like 10.0.0.0/8 or fd00::/8)', 'scrape.allow_cidrs: allow_cidrs must list at least one CIDR; leave it out to allow every address that deny_cidrs does not deny'],
    );
  });

  test('a host that the URL parser cannot read is dropped, not scraped', () => {
    const c = config('discovery:\n  - ec2: {}');
    const { dropped } = buildTargets(c, group(c, [ec2Instance('999.1.1.1')]));
    assert.equal(dropped[0]?.reason, 'host "999.1.1.1" is not a valid host name or IP address');
  });

  describe('at connect time (host names, DNS rebinding)', () => {
    async function withServer(fn: (port: number, hits: () => number) => Promise<void>): Promise<void> {
      let hits = 0;
      const server = createServer((_req, res) => {
        hits++;
        res.writeHead(404).end('no');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        await fn((server.address() as AddressInfo).port, () => hits);
      } finally {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    }

    function target(url: string): Target {
      return { id: 't', provider: 'static', source: 0, service: 's', address: new URL(url).host, scheme: 'http', labels: {}, timing: { kind: 'interval', ms: 60_000 }, profiles: [{ type: 'heap', url, delta: false }] };
    }

    async function scrape(c: Config, url: string) {
      const client = await createTargetClient(clientSettingsFor(c, 0));
      try {
        const t = target(url);
        return await scrapeProfile(t, t.profiles[0]!, client, { timeout: 5000, maxProfileSize: 1 << 20, maxDecompressedSize: 1 << 20 }, AbortSignal.timeout(10_000));
      } finally {
        await client.close();
      }
    }

    test('a name that resolves into a denied range is refused with the rule named; no connection is made', async () => {
      await withServer(async (port, hits) => {
        const c = config(`scrape: {deny_cidrs: [127.0.0.0/8, "::1/128"]}\ndiscovery:\n  - static: {targets: ["localhost:${port}"]}`);
        const outcome = await scrape(c, `http://localhost:${port}/debug/pprof/heap`);
        assert.equal(outcome.ok, false);
        assert.match(outcome.ok ? '' : outcome.reason, /host localhost resolves to (127\.0\.0\.1|::1), which is in scrape\.deny_cidrs (127\.0\.0\.0\/8|::1\/128): not connecting/);
        const literal = await scrape(c, `http://127.0.0.1:${port}/debug/pprof/heap`);
        assert.match(literal.ok ? '' : literal.reason, /address 127\.0\.0\.1 is in scrape\.deny_cidrs 127\.0\.0\.0\/8: not connecting/);
        assert.equal(hits(), 0);
      });
    });

    test('allow_cidrs holds at connect time too; an allowed name connects as before', async () => {
      await withServer(async (port, hits) => {
        const outside = config(`scrape: {allow_cidrs: [10.0.0.0/8]}\ndiscovery:\n  - static: {targets: ["localhost:${port}"]}`);
        const refused = await scrape(outside, `http://localhost:${port}/debug/pprof/heap`);
        assert.match(refused.ok ? '' : refused.reason, /which is not in scrape\.allow_cidrs \(10\.0\.0\.0\/8\): not connecting/);
        assert.equal(hits(), 0);
        const allowed = config(`discovery:\n  - static: {targets: ["127.0.0.1:${port}"]}`);
        const answered = await scrape(allowed, `http://127.0.0.1:${port}/debug/pprof/heap`);
        assert.match(answered.ok ? '' : answered.reason, /^HTTP 404/);
        assert.equal(hits(), 1);
      });
    });
  });
});

describe('labels the daemon owns', () => {
  const owned: [string, string][] = [
    ['ec2', 'instance'],
    ['ec2', 'provider'],
    ['ec2', 'instance_id'],
    ['ec2', 'region'],
    ['docker', 'instance'],
    ['docker', 'container_id'],
    ['docker', 'image'],
  ];
  for (const [provider, name] of owned) {
    test(`a ${provider === 'ec2' ? 'tag' : 'label'} pprof.label.${name} drops the target, saying why`, () => {
      const c = config(`discovery:\n  - ${provider}: {}`);
      const noun = provider === 'ec2' ? 'tag' : 'label';
      const found = provider === 'ec2' ? ec2Instance('10.0.0.7', { [`pprof.label.${name}`]: '10.0.0.99:6060' }) : dockerContainer({ [`pprof.label.${name}`]: '10.0.0.99:6060' });
      const { targets, dropped } = buildTargets(c, group(c, [found], provider as 'ec2' | 'docker'));
      assert.equal(targets.length, 0);
      assert.equal(dropped[0]?.reason, `${noun} pprof.label.${name}: "${name}" is a label the daemon owns; tags and labels cannot set it (the config file can): remove the ${noun}`);
    });
  }

  test('a name that sanitises to an owned one is refused too; other labels pass', () => {
    const c = config('discovery:\n  - ec2: {}');
    const { targets, dropped } = buildTargets(c, group(c, [ec2Instance('10.0.0.7', { 'pprof.label.instance-id': 'i-other' }), ec2Instance('10.0.0.8', { 'pprof.label.team': 'core' })]));
    assert.match(dropped[0]?.reason ?? '', /^tag pprof\.label\.instance-id: "instance_id" is a label the daemon owns/);
    assert.equal(targets[0]?.labels['team'], 'core');
    assert.equal(targets[0]?.labels['instance'], '10.0.0.8:6060');
  });

  test('the config file may still set them', async () => {
    const c = config(`
discovery:
  - static: {labels: {instance: api-1}, targets: ["10.0.0.5:6060"]}
  - ec2: {}
overrides:
  - {match: {provider: ec2}, labels: {instance_id: masked}}
`);
    const built = buildTargets(c, [...(await staticGroups(c)), ...group(c, [ec2Instance('10.0.0.7')])]);
    assert.deepEqual(built.dropped, []);
    assert.equal(built.targets[0]?.labels['instance'], 'api-1');
    assert.equal(built.targets[1]?.labels['instance_id'], 'masked');
  });
});

describe('scheme and credentials', () => {
  test('a tag may upgrade http to https, but not downgrade the https the file set', () => {
    const c = config('discovery:\n  - ec2: {scheme: https}\n  - docker: {}');
    const ec2 = buildTargets(c, group(c, [ec2Instance('10.0.0.7', { 'pprof.scheme': 'http' }), ec2Instance('10.0.0.8', { 'pprof.scheme': 'https' })]));
    assert.equal(ec2.dropped[0]?.reason, 'tag pprof.scheme: "http" would turn this target\'s https (set by discovery[0].ec2) into plain http: tags may choose https, never drop it; remove the tag');
    assert.deepEqual(ec2.targets.map((t) => t.profiles[0]?.url), ['https://10.0.0.8:6060/debug/pprof/profile?seconds=55']);
    const docker = buildTargets(c, group(c, [dockerContainer({ 'pprof.scheme': 'https' })], 'docker'));
    assert.equal(docker.targets[0]?.scheme, 'https');
  });

  test('an overrides: rule (the file) may still choose the scheme after a tag', () => {
    const c = config('discovery:\n  - ec2: {scheme: https}\noverrides:\n  - {match: {instance_id: i-0abc}, scheme: http}');
    const { targets, dropped } = buildTargets(c, group(c, [ec2Instance('10.0.0.7', { 'pprof.scheme': 'http' })]));
    assert.deepEqual(dropped, []);
    assert.equal(targets[0]?.scheme, 'http');
  });

  test("a block's credentials go only to that block's targets; scrape:'s to every block without its own", () => {
    const c = config(`
scrape: {bearer_token: scrape-wide}
discovery:
  - static: {bearer_token: static-only, targets: ["10.0.0.5:6060"]}
  - ec2: {}
  - docker: {basic_auth: {username: u, password: docker-only}}
`);
    const [s, e, d] = [0, 1, 2].map((i) => clientSettingsFor(c, i));
    assert.equal(s?.bearer_token?.reveal(), 'static-only');
    assert.equal(e?.bearer_token?.reveal(), 'scrape-wide');
    assert.equal(e?.basic_auth, undefined);
    assert.equal(d?.bearer_token, undefined);
    assert.equal(d?.basic_auth?.username, 'u');
    // a target always carries the index of the entry that found it: metadata cannot move it to another entry's client
    const built = buildTargets(c, group(c, [dockerContainer({ 'pprof.label.team': 'x', 'pprof.port': '7070' })], 'docker'));
    assert.equal(built.targets[0]?.source, 2);
  });
});
