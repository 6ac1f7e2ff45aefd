/**
 * Pieces for the target builder tests: a config around the YAML a test is
 * about, the groups its static entries publish, and what EC2 or Docker
 * would publish.
 */
import type { ContainerInfo } from 'dockerode';
import { parseConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/index.js';
import { containerToDiscovered } from '../../src/discovery/providers/docker-containers.js';
import { createStaticProvider } from '../../src/discovery/providers/static.js';
import type { Discovered, TargetGroup } from '../../src/targets/index.js';

/** `yaml` as test.yaml, with a directory repository added. */
export function config(yaml: string): Config {
  return parseConfig(`${yaml}\nrepositories:\n  - directory: {path: ./p}\n`, 'test.yaml', { baseDir: '.', env: {} }).config;
}

/** The errors config(yaml) reports, each `test.yaml:line:column: path: message`; none when it loads. */
export function configErrors(yaml: string): string[] {
  try {
    config(yaml);
    return [];
  } catch (err) {
    return (err as Error).message.split('\n').slice(1);
  }
}

/** A provider-like group, as EC2 or Docker would publish it. */
export function group(c: Config, found: Discovered[], provider: 'ec2' | 'docker' = 'ec2'): TargetGroup[] {
  return [{ source: c.discovery.findIndex((e) => e[provider] !== undefined), provider, directiveNoun: provider === 'ec2' ? 'tag' : 'label', targets: found }];
}

/** The groups the static entries of `c` publish. */
export async function staticGroups(c: Config): Promise<TargetGroup[]> {
  const groups: TargetGroup[] = [];
  for (let i = 0; i < c.discovery.length; i++) {
    const entry = c.discovery[i];
    if (entry?.static) groups.push({ source: i, provider: 'static', targets: await createStaticProvider(entry.static, i).refresh(AbortSignal.timeout(1000)) });
  }
  return groups;
}

/** Container api-1 (image api:1, id starting `shortId`) on the default bridge, as the Docker provider finds it. */
export function dockerContainer(labels: Record<string, string>, ip = '10.9.0.2', shortId = 'd4e9433fb6f9'): Discovered {
  const info = {
    Id: `${shortId}a1b2c3d4e5f60718293a4b5c6d7e8f9000112233445566778899`,
    Names: ['/api-1'],
    Image: 'api:1',
    Labels: labels,
    HostConfig: { NetworkMode: 'default' },
    NetworkSettings: { Networks: { bridge: { IPAddress: ip } } },
  } as unknown as ContainerInfo;
  return containerToDiscovered(info, { hostAddress: '127.0.0.1' });
}
