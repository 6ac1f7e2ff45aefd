import assert from 'node:assert/strict';
import {test} from 'node:test';
import type {ContainerInfo} from 'dockerode';
import {parseConfig} from '../../src/config/index.js';
import {containerToDiscovered} from '../../src/discovery/providers/docker-containers.js';
import {buildTargets} from '../../src/targets/index.js';
import type {Discovered} from '../../src/targets/index.js';

const ID = 'd4e9433fb6f9a1b2c3d4e5f60718293a4b5c6d7e8f9000112233445566778899';

/** A ContainerList entry as Docker 20.10 answers it, with only what a case changes. */
function container(over: {names?: string[]; labels?: Record<string, string>; mode?: string; networks?: Record<string, {ip?: string; ipv6?: string}>; image?: string} = {}): ContainerInfo {
  const networks = over.networks ?? {bridge: {ip: '172.17.0.2'}};
  return {
    Id: ID,
    Names: over.names ?? ['/api-1'],
    Image: over.image ?? 'registry.local/api:1.2',
    ImageID: 'sha256:f6e4',
    Command: '/target',
    Created: 1795598927,
    Ports: [],
    Labels: over.labels ?? {},
    State: 'running',
    Status: 'Up 6 seconds',
    HostConfig: {NetworkMode: over.mode ?? 'default'},
    NetworkSettings: {
      Networks: Object.fromEntries(
        Object.entries(networks).map(([name, n]) => [
          name,
          {NetworkID: `net-${name}`, EndpointID: 'e', Gateway: '', IPAddress: n.ip ?? '', IPPrefixLen: 16, IPv6Gateway: '', GlobalIPv6Address: n.ipv6 ?? '', GlobalIPv6PrefixLen: 0, MacAddress: ''},
        ]),
      ),
    },
    Mounts: [],
  };
}

const HOST = {hostAddress: '127.0.0.1'};

test('a container becomes metadata: name without /, 12-char id, image, compose labels, service', () => {
  const found = containerToDiscovered(
    container({labels: {'com.docker.compose.project': 'shop', 'com.docker.compose.service': 'api', 'pprof.port': '7070', 'team': 'core', 'org.opencontainers.image.version': '1.2'}}),
    HOST,
  );
  assert.equal(found.address, '172.17.0.2');
  assert.deepEqual(found.labels, {container_name: 'api-1', container_id: 'd4e9433fb6f9', image: 'registry.local/api:1.2', compose_project: 'shop', compose_service: 'api'});
  assert.equal(found.service, 'api');
  assert.equal(found.fallbackService, 'api-1');
  assert.deepEqual(found.directives, {'pprof.port': '7070'});
  assert.deepEqual(found.hidden, {
    label_com_docker_compose_project: 'shop',
    label_com_docker_compose_service: 'api',
    label_pprof_port: '7070',
    label_team: 'core',
    label_org_opencontainers_image_version: '1.2',
  });
});

test('without compose labels the service is left to the container name', () => {
  const found = containerToDiscovered(container(), HOST);
  assert.equal(found.service, undefined);
  assert.equal(found.fallbackService, 'api-1');
  assert.deepEqual(Object.keys(found.labels).sort(), ['container_id', 'container_name', 'image']);
});

test('the container\'s own name is the one without a link alias', () => {
  const found = containerToDiscovered(container({names: ['/web/db-alias', '/db']}), HOST);
  assert.equal(found.labels['container_name'], 'db');
});

const addressCases: {name: string; c: ContainerInfo; network?: string; address?: string; error?: RegExp}[] = [
  {name: 'host network mode: host_address', c: container({mode: 'host', networks: {host: {}}}), address: '127.0.0.1'},
  {name: 'host network mode ignores network', c: container({mode: 'host', networks: {host: {}}}), network: 'bridge', address: '127.0.0.1'},
  {name: 'first network with an address', c: container({networks: {a_net: {}, b_net: {ip: '10.1.0.5'}, c_net: {ip: '10.2.0.5'}}}), address: '10.1.0.5'},
  {name: 'the named network', c: container({networks: {a_net: {ip: '10.1.0.5'}, b_net: {ip: '10.2.0.5'}}}), network: 'b_net', address: '10.2.0.5'},
  {name: 'IPv6 only', c: container({networks: {v6: {ipv6: 'fd00::5'}}}), address: 'fd00::5'},
  {name: 'not on the named network', c: container({networks: {bridge: {ip: '172.17.0.2'}}}), network: 'backend', error: /^container api-1 is not on network backend \(it is on bridge\)/},
  {name: 'no address on the named network', c: container({networks: {backend: {}}}), network: 'backend', error: /^container api-1 has no IP address on network backend$/},
  {name: 'network mode none', c: container({mode: 'none', networks: {none: {}}}), error: /^container api-1 has networking disabled \(network mode none\)$/},
  {name: 'shares another container\'s network', c: container({mode: `container:${'ab'.repeat(32)}`, networks: {}}), error: /^container api-1 shares the network of container abababababab and has no address of its own/},
];

for (const tc of addressCases) {
  test(`address: ${tc.name}`, () => {
    const found = containerToDiscovered(tc.c, {hostAddress: '127.0.0.1', network: tc.network});
    if (tc.address !== undefined) {
      assert.equal(found.address, tc.address);
      assert.equal(found.addressError, undefined);
    } else {
      assert.equal(found.address, undefined);
      assert.match(found.addressError ?? '', tc.error!);
    }
  });
}

test('host_address is what host-mode containers get', () => {
  assert.equal(containerToDiscovered(container({mode: 'host', networks: {host: {}}}), {hostAddress: '10.0.0.9'}).address, '10.0.0.9');
});

function build(yaml: string, found: Discovered[]) {
  const {config} = parseConfig(`discovery: [{docker: {}}]\nrepositories: [{directory: {path: /tmp/unused}}]\n${yaml}`, 'test.yaml', {baseDir: '/tmp'});
  return buildTargets(config, [{source: 0, provider: 'docker', directiveNoun: 'label', targets: found}]);
}

test('labels drive the target through the builder: port, service, profiles, extra labels; the block port otherwise', () => {
  const good = containerToDiscovered(container({labels: {'pprof.port': '7070', 'pprof.service': 'checkout', 'pprof.profiles': 'heap, goroutine', 'pprof.label.team': 'core', 'pprof.interval': '30s'}}), HOST);
  const plain = containerToDiscovered(container({names: ['/worker'], networks: {bridge: {ip: '172.17.0.3'}}}), HOST);
  const {targets, dropped} = build('', [good, plain]);
  assert.deepEqual(dropped, []);
  const [a, b] = targets;
  assert.equal(a?.address, '172.17.0.2:7070');
  assert.equal(a?.service, 'checkout');
  assert.deepEqual(a?.profiles.map((p) => p.type), ['heap', 'goroutine']);
  assert.equal(a?.labels['team'], 'core');
  assert.deepEqual(a?.timing, {kind: 'interval', ms: 30_000});
  assert.equal(b?.address, '172.17.0.3:6060');
  assert.equal(b?.service, 'worker');
  assert.equal(b?.labels['provider'], 'docker');
  // hidden labels are for matching, never shipped
  assert.equal(Object.keys(b?.labels ?? {}).some((k) => k.startsWith('label_')), false);
});

const badLabels: [Record<string, string>, string][] = [
  [{'pprof.port': 'seventy'}, 'label pprof.port: "seventy" is not a port'],
  [{'pprof.port': '70000'}, 'label pprof.port: "70000" is out of range 1..65535'],
  [{'pprof.scheme': 'ftp'}, 'label pprof.scheme: "ftp" is not http or https'],
  [{'pprof.path': 'debug'}, 'label pprof.path: "debug" is not a path (it must start with /)'],
  [{'pprof.interval': 'often'}, 'label pprof.interval: "often" is not a duration (like 30s or 5m)'],
  [{'pprof.profiles': 'heap,flame'}, 'label pprof.profiles: "heap,flame" names unknown profile type flame'],
];

for (const [labels, reason] of badLabels) {
  test(`a bad label drops only its container: ${JSON.stringify(labels)}`, () => {
    const bad = containerToDiscovered(container({labels}), HOST);
    const ok = containerToDiscovered(container({names: ['/ok'], networks: {bridge: {ip: '172.17.0.9'}}}), HOST);
    const {targets, dropped} = build('', [bad, ok]);
    assert.deepEqual(targets.map((t) => t.labels['container_name']), ['ok']);
    assert.equal(dropped.length, 1);
    assert.ok(dropped[0]!.reason.startsWith(reason), dropped[0]!.reason);
    assert.equal(dropped[0]!.labels['container_name'], 'api-1');
  });
}

test('overrides match hidden container labels and the compose labels', () => {
  const core = containerToDiscovered(container({labels: {team: 'core', 'com.docker.compose.project': 'shop', 'com.docker.compose.service': 'api'}}), HOST);
  const legacy = containerToDiscovered(container({names: ['/old'], labels: {team: 'legacy-billing'}, networks: {bridge: {ip: '172.17.0.4'}}}), HOST);
  const {targets, dropped} = build(
    `overrides:
  - match: {label_team: core}
    port: 7777
    labels: {tier: gold}
  - match: {compose_project: shop}
    profiles: [heap]
  - match: {label_team: /^legacy-/}
    drop: true
`,
    [core, legacy],
  );
  assert.equal(targets.length, 1);
  assert.equal(targets[0]?.address, '172.17.0.2:7777');
  assert.equal(targets[0]?.labels['tier'], 'gold');
  assert.deepEqual(targets[0]?.profiles.map((p) => p.type), ['heap']);
  assert.match(dropped[0]?.reason ?? '', /^dropped by overrides\[2\]/);
  assert.equal(dropped[0]?.labels['label_team'], 'legacy-billing');
});

test('a container without an address is dropped with the reason', () => {
  const {targets, dropped} = build('', [containerToDiscovered(container({mode: 'none', networks: {none: {}}}), HOST)]);
  assert.equal(targets.length, 0);
  assert.equal(dropped[0]?.reason, 'container api-1 has networking disabled (network mode none)');
  assert.equal(dropped[0]?.address, undefined);
});
