import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildTargets, shardOf } from '../../src/targets/index.js';
import type { Discovered } from '../../src/targets/index.js';
import { config, group, staticGroups } from '../helpers/targets.js';

describe('static targets', () => {
  test('all three forms, with group and target settings', async () => {
    const c = config(`
scrape: {labels: {env: prod}}
discovery:
  - static:
      service: api
      labels: {team: core}
      targets:
        - 10.0.0.5:6060
        - http://10.0.0.6:8080/internal/pprof
        - {address: 10.0.0.7, port: 7070, service: billing, labels: {tier: gold}, profiles: [cpu, heap]}
        - "[::1]:6061"
`);
    const { targets, dropped } = buildTargets(c, await staticGroups(c));
    assert.deepEqual(dropped, []);
    assert.deepEqual(
      targets.map((t) => [t.service, t.address, t.scheme, t.labels]),
      [
        ['api', '10.0.0.5:6060', 'http', { instance: '10.0.0.5:6060', provider: 'static', env: 'prod', team: 'core' }],
        ['api', '10.0.0.6:8080', 'http', { instance: '10.0.0.6:8080', provider: 'static', env: 'prod', team: 'core' }],
        ['billing', '10.0.0.7:7070', 'http', { instance: '10.0.0.7:7070', provider: 'static', env: 'prod', team: 'core', tier: 'gold' }],
        ['api', '[::1]:6061', 'http', { instance: '[::1]:6061', provider: 'static', env: 'prod', team: 'core' }],
      ],
    );
    assert.deepEqual(
      targets[1]?.profiles.map((p) => p.url),
      [
        'http://10.0.0.6:8080/internal/pprof/profile?seconds=55',
        'http://10.0.0.6:8080/internal/pprof/heap',
        'http://10.0.0.6:8080/internal/pprof/allocs',
        'http://10.0.0.6:8080/internal/pprof/goroutine',
        'http://10.0.0.6:8080/internal/pprof/block',
        'http://10.0.0.6:8080/internal/pprof/mutex',
      ],
    );
    assert.deepEqual(targets[2]?.profiles.map((p) => p.type), ['cpu', 'heap']);
  });

  test('service defaults to the host, port to 6060', async () => {
    const c = config('discovery:\n  - static: {targets: [db1.internal]}');
    const [t] = buildTargets(c, await staticGroups(c)).targets;
    assert.equal(t?.service, 'db1.internal');
    assert.equal(t?.address, 'db1.internal:6060');
  });

  test('a type outside /debug/pprof keeps its own path under a prefix', async () => {
    const c = config(`
profiles:
  heap: {path: /debug/pprof/heap}
  fgprof: {path: /debug/fgprof, seconds: 5}
discovery:
  - static: {path: /internal, targets: [h:1]}
`);
    const [t] = buildTargets(c, await staticGroups(c)).targets;
    assert.deepEqual(t?.profiles.map((p) => p.url), ['http://h:1/internal/heap', 'http://h:1/debug/fgprof?seconds=5']);
  });
});

describe('precedence', () => {
  const yaml = `
scrape: {interval: 60s, labels: {layer: scrape}}
discovery:
  - ec2:
      port: 6060
      service: from-block
      labels: {layer: block}
      interval: 2m
overrides:
  - match: {service: billing}
    port: 7070
    labels: {layer: rule1}
  - match: {layer: rule1}
    path: /internal/debug/pprof
    scheme: https
    profiles: [heap]
    interval: 30s
`;
  test('defaults < scrape < provider block < metadata < overrides in order', () => {
    const c = config(yaml);
    const found: Discovered[] = [
      // the block applies: no metadata service
      { address: '10.0.0.1', labels: { instance_id: 'i-1' }, fallbackService: 'i-1' },
      // metadata beats the block; rule 1 matches the service rule 2 sees what rule 1 set
      { address: '10.0.0.2', labels: { instance_id: 'i-2' }, service: 'billing', directives: { 'pprof.label.layer': 'tag' } },
      // a tag beats the block; the rules override the tag
      { address: '10.0.0.3', labels: { instance_id: 'i-3' }, directives: { 'pprof.service': 'billing', 'pprof.port': '9000', 'pprof.interval': '45s' } },
    ];
    const { targets, dropped } = buildTargets(c, group(c, found));
    assert.deepEqual(dropped, []);
    const [a, b, d] = targets;
    assert.equal(a?.service, 'from-block');
    assert.equal(a?.address, '10.0.0.1:6060');
    assert.equal(a?.labels['layer'], 'block');
    assert.deepEqual(a?.timing, { kind: 'interval', ms: 120_000 });

    assert.equal(b?.service, 'billing');
    assert.equal(b?.address, '10.0.0.2:7070');
    assert.equal(b?.labels['layer'], 'rule1');
    assert.equal(b?.scheme, 'https');
    assert.deepEqual(b?.profiles.map((p) => p.url), ['https://10.0.0.2:7070/internal/debug/pprof/heap']);
    assert.deepEqual(b?.timing, { kind: 'interval', ms: 30_000 });

    assert.equal(d?.address, '10.0.0.3:7070');
    assert.deepEqual(d?.timing, { kind: 'interval', ms: 30_000 });
    assert.equal(d?.labels['instance'], '10.0.0.3:7070');
  });

  test('the fallback service is used when nothing names one', () => {
    const c = config('discovery:\n  - ec2: {}');
    const [t] = buildTargets(c, group(c, [{ address: '10.0.0.9', labels: {}, fallbackService: 'i-9' }])).targets;
    assert.equal(t?.service, 'i-9');
  });
});

describe('overrides', () => {
  test('regex match, drop, hidden labels and a missing label matching empty', () => {
    const c = config(`
discovery:
  - ec2: {}
overrides:
  - match: {team: "/^legacy-.*/"}
    drop: true
  - match: {tag_env: staging}
    labels: {env: staging}
  - match: {team: ""}
    labels: {team: unowned}
`);
    const found: Discovered[] = [
      { address: '10.0.0.1', labels: { team: 'legacy-billing' } },
      { address: '10.0.0.2', labels: { team: 'payments' }, hidden: { tag_env: 'staging' } },
      { address: '10.0.0.3', labels: {} },
    ];
    const { targets, dropped } = buildTargets(c, group(c, found));
    assert.deepEqual(targets.map((t) => t.address), ['10.0.0.2:6060', '10.0.0.3:6060']);
    assert.equal(targets[0]?.labels['env'], 'staging');
    assert.equal(targets[0]?.labels['tag_env'], undefined, 'hidden labels are never shipped');
    assert.equal(targets[1]?.labels['team'], 'unowned');
    assert.equal(dropped.length, 1);
    assert.equal(dropped[0]?.reason, 'dropped by overrides[0] (match team=/^legacy-.*/)');
    assert.equal(dropped[0]?.address, '10.0.0.1:6060');
  });

  test('bad metadata values drop that target with a reason; the rest go on', () => {
    const c = config('discovery:\n  - ec2: {}');
    const bad: [Record<string, string>, string][] = [
      [{ 'pprof.port': 'seventy' }, 'tag pprof.port: "seventy" is not a port'],
      [{ 'pprof.port': '70000' }, 'tag pprof.port: "70000" is out of range 1..65535'],
      [{ 'pprof.scheme': 'gopher' }, 'tag pprof.scheme: "gopher" is not http or https'],
      [{ 'pprof.path': 'debug' }, 'tag pprof.path: "debug" is not a path (it must start with /)'],
      [{ 'pprof.interval': 'often' }, 'tag pprof.interval: "often" is not a duration (like 30s or 5m)'],
      [{ 'pprof.profiles': 'heap,cpux' }, 'tag pprof.profiles: "heap,cpux" names unknown profile type cpux (known: cpu, heap, allocs, goroutine, block, mutex, threadcreate, trace)'],
      [{ 'pprof.service': ' ' }, 'tag pprof.service: " " is empty'],
    ];
    const found: Discovered[] = [...bad.map(([directives], i) => ({ address: `10.0.1.${i}`, labels: {}, directives })), { address: '10.0.2.1', labels: {}, directives: { 'pprof.label.odd key=x': 'a,b={c}', 'pprof.scrape': 'true' } }];
    const { targets, dropped } = buildTargets(c, group(c, found));
    assert.deepEqual(dropped.map((d) => d.reason), bad.map(([, reason]) => reason));
    assert.equal(targets.length, 1);
    assert.equal(targets[0]?.labels['odd_key_x'], 'a,b={c}');
  });

  test('docker metadata reasons say "label"', () => {
    const c = config('discovery:\n  - docker: {}');
    const { dropped } = buildTargets(c, group(c, [{ address: '172.17.0.2', labels: {}, directives: { 'pprof.port': 'x' } }], 'docker'));
    assert.equal(dropped[0]?.reason, 'label pprof.port: "x" is not a port');
  });

  test('a target without an address is dropped with the provider reason', () => {
    const c = config('discovery:\n  - ec2: {}');
    const { dropped } = buildTargets(c, group(c, [{ labels: { instance_id: 'i-1' }, addressError: 'no public_ip (the instance has none)' }]));
    assert.deepEqual(dropped, [{ provider: 'ec2', source: 0, address: undefined, labels: { instance_id: 'i-1' }, kind: 'no_address', reason: 'no public_ip (the instance has none)' }]);
  });

  test('duplicates keep the first', async () => {
    const c = config('discovery:\n  - static: {targets: [h:1]}\n  - static: {targets: [h:1]}');
    const { targets, dropped } = buildTargets(c, await staticGroups(c));
    assert.equal(targets.length, 1);
    assert.match(dropped[0]?.reason ?? '', /^duplicate of target [0-9a-f]{16} \(h:1, from discovery\[0\]\)$/);
  });
});

describe('identity and sharding', () => {
  test('ids are stable and depend on where profiles go, not on order', async () => {
    const c = config('discovery:\n  - static: {targets: [a:1, b:2]}');
    const one = buildTargets(c, await staticGroups(c)).targets;
    const c2 = config('discovery:\n  - static: {targets: [b:2, a:1]}');
    const two = buildTargets(c2, await staticGroups(c2)).targets;
    assert.deepEqual(one.map((t) => t.id).sort(), two.map((t) => t.id).sort());
    const c3 = config('discovery:\n  - static: {targets: [a:1], labels: {x: y}}');
    assert.notEqual(buildTargets(c3, await staticGroups(c3)).targets[0]?.id, one[0]?.id);
  });

  test('shards split the targets, each kept by exactly one', async () => {
    const addresses = Array.from({ length: 200 }, (_, i) => `10.1.${Math.floor(i / 100)}.${i % 100}:6060`);
    const list = `[${addresses.join(', ')}]`;
    const kept: string[][] = [];
    for (let index = 0; index < 4; index++) {
      const c = config(`discovery:\n  - static: {targets: ${list}}\nshard: {count: 4, index: ${index}}`);
      const { targets, dropped } = buildTargets(c, await staticGroups(c));
      assert.equal(targets.length + dropped.length, 200);
      for (const t of targets) assert.equal(shardOf(t.id, 4), index);
      assert.match(dropped[0]?.reason ?? '', new RegExp(`^belongs to shard [0-3] of 4; this daemon is shard ${index}$`));
      kept.push(targets.map((t) => t.address));
    }
    const all = kept.flat();
    assert.equal(new Set(all).size, 200);
    for (const k of kept) assert.ok(k.length > 25 && k.length < 75, `uneven shard: ${k.length}`);
  });

  test('a cron schedule applies unless a target sets an interval', async () => {
    const c = config('scrape: {schedule: "*/10 * * * *", spread: 45s}\ndiscovery:\n  - static: {targets: [a:1, {address: "b:2", interval: 1m}]}');
    const [a, b] = buildTargets(c, await staticGroups(c)).targets;
    assert.deepEqual(a?.timing, { kind: 'cron', schedule: '*/10 * * * *', spreadMs: 45_000 });
    assert.deepEqual(b?.timing, { kind: 'interval', ms: 60_000 });
  });
});
