import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reportJson } from '../../src/cli/targets.js';
import { buildTargets, targetsReport } from '../../src/targets/index.js';
import type { BuildResult } from '../../src/targets/index.js';
import { config, group, staticGroups } from '../helpers/targets.js';

/** What the dry run printed before it wrote item by item: the whole report as one string. */
const whole = (result: BuildResult, problems: { provider: string; source: number; error: string }[]): string => JSON.stringify(targetsReport(result, problems), null, 2) + '\n';

test('the dry run JSON, written item by item, is byte for byte the report as JSON.stringify writes it', async () => {
  const c = config(`
scrape: {labels: {env: prod}}
discovery:
  - static:
      service: api
      labels: {team: core}
      targets:
        - 10.0.0.5:6060
        - "http://10.0.0.6:8080/internal/pprof"
        - {address: 10.0.0.7, port: 7070, service: "bill\\"ing \\u00e9", labels: {tier: "gold\\nplus"}, profiles: [cpu, heap]}
        - 169.254.169.254:80
  - ec2: {region: us-east-1}
`);
  const result = buildTargets(c, [
    ...(await staticGroups(c)),
    ...group(c, [{ addressError: 'instance i-1 has no private IPv4 address (address: private_ip)', labels: { instance_id: 'i-1' }, fallbackService: 'i-1' }]).map((g) => ({ ...g, source: 1 })),
  ]);
  assert.ok(result.targets.length === 3 && result.dropped.length === 2, 'targets and drops of every kind');
  const problems = [{ provider: 'ec2', source: 1, error: 'UnauthorizedOperation calling DescribeInstances in us-east-1' }];
  const cases: [string, BuildResult, typeof problems][] = [
    ['targets, drops and an error', result, problems],
    ['nothing at all', { targets: [], dropped: [] }, []],
    ['one target, no drops', { targets: result.targets.slice(0, 1), dropped: [] }, []],
    ['drops only', { targets: [], dropped: result.dropped }, problems],
  ];
  for (const [name, r, p] of cases) assert.equal([...reportJson(r, p)].join(''), whole(r, p), name);
});
