/**
 * relabel_configs in the target builder: over the __meta_* names Prometheus
 * gives EC2 and Docker metadata, before the daemon's own rules, which still
 * apply after them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { instanceMetadata } from '../../src/discovery/providers/ec2-metadata.js';
import { buildTargets } from '../../src/targets/index.js';
import { targetJson } from '../../src/targets/report.js';
import { config, dockerContainer, group, staticGroups } from '../helpers/targets.js';

function ec2Instance(ip: string, id: string, tags: Record<string, string> = {}) {
  return instanceMetadata(
    { InstanceId: id, InstanceType: 'm5.large', Placement: { AvailabilityZone: 'eu-west-1a' }, PrivateIpAddress: ip, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
    'eu-west-1',
    { address: 'private_ip', serviceTag: 'Name', tagLabels: [] },
  );
}

describe('relabel_configs on an ec2 block, as pasted from an ec2_sd_configs job', () => {
  const c = config(`
discovery:
  - ec2:
      region: eu-west-1
      relabel_configs:
        - source_labels: [__meta_ec2_tag_Environment]
          regex: prod
          action: keep
        - source_labels: [__meta_ec2_private_ip]
          replacement: '\${1}:7070'
          target_label: __address__
        - regex: __meta_ec2_tag_(Team|Tier)
          action: labelmap
        - source_labels: [__meta_ec2_tag_Name]
          target_label: __service__
        - source_labels: [__meta_ec2_availability_zone]
          target_label: az
        - regex: availability_zone|instance_type
          action: labeldrop
`);
  const found = [
    ec2Instance('10.0.0.7', 'i-0a', { Environment: 'prod', Team: 'core', Name: 'billing' }),
    ec2Instance('10.0.0.8', 'i-0b', { Environment: 'staging', Name: 'billing' }),
  ];
  const { targets, dropped } = buildTargets(c, group(c, found));

  test('keep, __address__, labelmap, __service__, labeldrop', () => {
    assert.equal(targets.length, 1);
    const t = targets[0];
    assert.ok(t);
    assert.equal(t.address, '10.0.0.7:7070');
    assert.equal(t.service, 'billing');
    assert.deepEqual(t.labels, { instance: '10.0.0.7:7070', provider: 'ec2', instance_id: 'i-0a', region: 'eu-west-1', Team: 'core', az: 'eu-west-1a' });
    assert.equal(t.profiles[1]?.url, 'http://10.0.0.7:7070/debug/pprof/heap');
  });

  test('the dry run shows the labels before and after', () => {
    const json = targetJson(targets[0] as (typeof targets)[number]);
    assert.equal(json.discovered_labels?.['__address__'], '10.0.0.7:6060');
    assert.equal(json.discovered_labels?.['__meta_ec2_tag_Environment'], 'prod');
    assert.equal(json.discovered_labels?.['__meta_ec2_instance_id'], 'i-0a');
    assert.equal(json.discovered_labels?.['__metrics_path__'], '/debug/pprof');
    assert.equal(json.labels['Team'], 'core');
    assert.equal(json.labels['__meta_ec2_tag_Environment'], undefined);
  });

  test('a target the rules drop names the rule and shows its labels before', () => {
    assert.equal(dropped.length, 1);
    assert.equal(dropped[0]?.kind, 'relabel');
    assert.equal(dropped[0]?.reason, 'dropped by discovery[0].ec2.relabel_configs[0]');
    assert.equal(dropped[0]?.labels['__meta_ec2_tag_Environment'], 'staging');
  });
});

describe('the daemon\'s rules still apply after relabeling', () => {
  test('deny_cidrs refuses an address the rules made', () => {
    const c = config(`
discovery:
  - ec2: {region: eu-west-1}
relabel_configs:
  - {target_label: __address__, replacement: '169.254.169.254:80'}
`);
    const { targets, dropped } = buildTargets(c, group(c, [ec2Instance('10.0.0.7', 'i-0a')]));
    assert.equal(targets.length, 0);
    assert.equal(dropped[0]?.kind, 'address_policy');
  });

  test('overrides: rules see the relabeled labels', () => {
    const c = config(`
discovery:
  - ec2: {region: eu-west-1}
relabel_configs:
  - {source_labels: [__meta_ec2_tag_Team], target_label: team}
overrides:
  - {match: {team: legacy}, drop: true}
`);
    const { targets, dropped } = buildTargets(c, group(c, [ec2Instance('10.0.0.7', 'i-0a', { Team: 'legacy' }), ec2Instance('10.0.0.8', 'i-0b', { Team: 'core' })]));
    assert.deepEqual(targets.map((t) => t.labels['team']), ['core']);
    assert.equal(dropped[0]?.kind, 'override');
  });

  test('bad values the rules produce drop that target with a reason', () => {
    const cases: [string, RegExp][] = [
      [`{target_label: __scheme__, replacement: ftp}`, /__scheme__ to "ftp": use http or https/],
      [`{target_label: __metrics_path__, replacement: '/a?b=1'}`, /__metrics_path__ to "\/a\?b=1", which has a \? in it/],
      [`{target_label: __address__, replacement: 'not an address'}`, /__address__ to "not an address"/],
      [`{regex: __address__, action: labeldrop}`, /left no __address__/],
      [`{regex: '__meta_ec2_tag_(.*)', action: labelmap}`, /made the label name "1st", which is not valid/],
    ];
    for (const [rule, reason] of cases) {
      const c = config(`discovery:\n  - ec2: {region: eu-west-1}\nrelabel_configs: [${rule}]`);
      const { targets, dropped } = buildTargets(c, group(c, [ec2Instance('10.0.0.7', 'i-0a', { '1st': 'x' })]));
      assert.equal(targets.length, 0, rule);
      assert.equal(dropped[0]?.kind, 'relabel', rule);
      assert.match(dropped[0]?.reason ?? '', reason, rule);
    }
  });

  test('the block\'s rules run before the top-level ones', () => {
    const c = config(`
discovery:
  - static: {targets: [10.0.0.5:6060], relabel_configs: [{target_label: stage, replacement: block}]}
relabel_configs:
  - {source_labels: [stage], target_label: seen, replacement: 'after-$1'}
`);
    return staticGroups(c).then((groups) => {
      const { targets } = buildTargets(c, groups);
      assert.equal(targets[0]?.labels['seen'], 'after-block');
    });
  });
});

test('docker metadata under Prometheus\'s names', () => {
  const c = config(`
discovery:
  - docker:
      relabel_configs:
        - {source_labels: [__meta_docker_container_label_team], target_label: team}
        - {source_labels: [__meta_docker_container_name], regex: '/(.*)', target_label: name}
`);
  const { targets } = buildTargets(c, group(c, [dockerContainer({ team: 'core' })], 'docker'));
  assert.equal(targets[0]?.labels['team'], 'core');
  assert.equal(targets[0]?.labels['name'], 'api-1');
});

test('without rules, a target carries no discovered labels (nothing changes for existing configs)', async () => {
  const c = config('discovery:\n  - static: {targets: [10.0.0.5:6060]}');
  const { targets } = buildTargets(c, await staticGroups(c));
  assert.equal(targets[0]?.discoveredLabels, undefined);
});
