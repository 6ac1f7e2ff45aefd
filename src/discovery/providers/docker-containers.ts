import type { ContainerInfo } from 'dockerode';
import type { Discovered } from '../../targets/index.js';
import { sanitizeLabelName } from '../../targets/index.js';

const COMPOSE_PROJECT = 'com.docker.compose.project';
const COMPOSE_SERVICE = 'com.docker.compose.service';

export interface ContainerAddressOptions {
  /** Which network's address to use; the first with an address when unset. */
  readonly network?: string | undefined;
  /** The address of containers in host network mode. */
  readonly hostAddress: string;
}

/** One running container, as ContainerList reports it, turned into metadata. */
export function containerToDiscovered(c: ContainerInfo, options: ContainerAddressOptions): Discovered {
  const id = c.Id.slice(0, 12);
  const name = containerName(c) ?? id;
  const containerLabels = c.Labels ?? {};
  const labels: Record<string, string> = { container_name: name, container_id: id, image: c.Image };
  const project = containerLabels[COMPOSE_PROJECT];
  const service = containerLabels[COMPOSE_SERVICE];
  if (project) labels['compose_project'] = project;
  if (service) labels['compose_service'] = service;

  const directives: Record<string, string> = {};
  const hidden: Record<string, string> = {};
  for (const [key, value] of Object.entries(containerLabels)) {
    if (key.startsWith('pprof.')) directives[key] = value;
    // all of them, pprof.* too, so a dropped target shows the value that dropped it
    const hiddenName = sanitizeLabelName(`label_${key}`);
    // a.b and a_b both become label_a_b: the one spelled that way wins
    if (hiddenName !== undefined && (!(hiddenName in hidden) || hiddenName === `label_${key}`)) hidden[hiddenName] = value;
  }

  return {
    ...addressOf(c, name, options),
    labels,
    hidden,
    directives,
    service: service || undefined,
    fallbackService: name,
  };
}

/** The container's own name: Names also lists the aliases links give it (/other/alias). */
function containerName(c: ContainerInfo): string | undefined {
  const names = c.Names ?? [];
  const own = names.find((n) => n.lastIndexOf('/') === 0) ?? names[0];
  return own?.replace(/^\//, '') || undefined;
}

function addressOf(c: ContainerInfo, name: string, options: ContainerAddressOptions): { address: string } | { addressError: string } {
  const mode = c.HostConfig?.NetworkMode ?? '';
  if (mode === 'host') return { address: options.hostAddress };
  const networks = c.NetworkSettings?.Networks ?? {};
  const ipOf = (n: (typeof networks)[string] | undefined): string => n?.IPAddress || n?.GlobalIPv6Address || '';
  const onNetworks = Object.keys(networks);
  if (options.network !== undefined) {
    const net = networks[options.network];
    if (!net) {
      return { addressError: `container ${name} is not on network ${options.network} (it is on ${onNetworks.join(', ') || 'none'}): set the docker block's network, or connect the container` };
    }
    const ip = ipOf(net);
    return ip ? { address: ip } : { addressError: `container ${name} has no IP address on network ${options.network}` };
  }
  for (const net of Object.values(networks)) {
    const ip = ipOf(net);
    if (ip) return { address: ip };
  }
  if (mode.startsWith('container:')) {
    return { addressError: `container ${name} shares the network of container ${mode.slice('container:'.length, 'container:'.length + 12)} and has no address of its own: label that container instead` };
  }
  if (mode === 'none') return { addressError: `container ${name} has networking disabled (network mode none)` };
  return { addressError: `container ${name} has no IP address on any network${onNetworks.length > 0 ? ` (it is on ${onNetworks.join(', ')})` : ''}` };
}
