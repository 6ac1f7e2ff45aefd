import type { Filter, Instance } from '@aws-sdk/client-ec2';
import type { Ec2Config } from '../../config/index.js';
import { sanitizeLabelName } from '../../targets/index.js';
import type { Discovered } from '../../targets/index.js';

type AddressKind = Ec2Config['address'];

const STATE_FILTERS = new Set(['instance-state-name', 'instance-state-code']);

/** The DescribeInstances filters of an entry: the user's, plus running-only unless they chose states. */
export function filtersOf(config: Pick<Ec2Config, 'filters'>): Filter[] {
  const filters: Filter[] = Object.entries(config.filters).map(([Name, Values]) => ({ Name, Values: [...Values] }));
  if (!filters.some((f) => STATE_FILTERS.has(f.Name ?? ''))) filters.push({ Name: 'instance-state-name', Values: ['running'] });
  return filters;
}

export interface MetadataOptions {
  readonly address: AddressKind;
  readonly serviceTag: string;
  readonly tagLabels: readonly string[];
}

const ADDRESS_NAMES: Record<AddressKind, string> = {
  private_ip: 'private IPv4 address',
  public_ip: 'public IPv4 address',
  private_dns: 'private DNS name',
  public_dns: 'public DNS name',
  ipv6: 'IPv6 address',
};

/**
 * One instance as metadata: address by the configured choice, the fixed
 * labels, every tag as a hidden `tag_<name>` for overrides, the tags asked
 * for in `tag_labels` as labels, and `pprof.*` tags as directives.
 */
export function instanceMetadata(instance: Instance, region: string, options: MetadataOptions): Discovered {
  const id = instance.InstanceId ?? '';
  const labels: Record<string, string> = {};
  const hidden: Record<string, string> = {};
  let directives: Record<string, string> | undefined;
  let service: string | undefined;

  // Sorted, and a key already spelled as a label name wins, so two tags that
  // sanitize to one name (`team id`, `team_id`) always resolve the same way.
  const tags = (instance.Tags ?? [])
    .filter((t): t is { Key: string; Value?: string } => typeof t.Key === 'string' && t.Key !== '')
    .sort((a, b) => (a.Key < b.Key ? -1 : a.Key > b.Key ? 1 : 0));
  const tagValues = new Map<string, string>();
  for (const tag of tags) {
    const value = tag.Value ?? '';
    tagValues.set(tag.Key, value);
    if (tag.Key.startsWith('pprof.')) (directives ??= {})[tag.Key] = value;
    const key = sanitizeLabelName(`tag_${tag.Key}`) as string;
    if (!(key in hidden) || key === `tag_${tag.Key}`) hidden[key] = value;
  }
  for (const wanted of options.tagLabels) {
    const value = tagValues.get(wanted);
    const name = sanitizeLabelName(wanted);
    if (value !== undefined && name !== undefined) labels[name] = value;
  }
  const serviceValue = tagValues.get(options.serviceTag);
  if (serviceValue !== undefined && serviceValue.trim() !== '') service = serviceValue;

  // Set after the tag labels: a tag cannot pass itself off as the instance's own metadata.
  setIf(labels, 'instance_id', id);
  setIf(labels, 'instance_type', instance.InstanceType);
  setIf(labels, 'availability_zone', instance.Placement?.AvailabilityZone);
  labels['region'] = region;
  setIf(labels, 'vpc_id', instance.VpcId);
  setIf(labels, 'image_id', instance.ImageId);

  setIf(hidden, 'subnet_id', instance.SubnetId);
  setIf(hidden, 'instance_state', instance.State?.Name);
  setIf(hidden, 'private_ip', instance.PrivateIpAddress);
  setIf(hidden, 'public_ip', instance.PublicIpAddress);
  setIf(hidden, 'private_dns', instance.PrivateDnsName);
  setIf(hidden, 'public_dns', instance.PublicDnsName);
  setIf(hidden, 'ipv6', ipv6Of(instance));
  setIf(hidden, 'architecture', instance.Architecture);
  setIf(hidden, 'lifecycle', instance.InstanceLifecycle ?? 'on-demand');

  const address = addressOf(instance, options.address);
  return {
    ...(address !== undefined
      ? { address }
      : { addressError: `instance ${id} has no ${ADDRESS_NAMES[options.address]} (address: ${options.address})` }),
    labels,
    hidden,
    ...(directives ? { directives } : {}),
    ...(service !== undefined ? { service } : {}),
    fallbackService: id,
  };
}

function setIf(target: Record<string, string>, key: string, value: string | undefined): void {
  if (value !== undefined && value !== '') target[key] = value;
}

function addressOf(instance: Instance, kind: AddressKind): string | undefined {
  const pick = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());
  switch (kind) {
    case 'private_ip':
      return pick(instance.PrivateIpAddress);
    case 'public_ip':
      return pick(instance.PublicIpAddress);
    case 'private_dns':
      return pick(instance.PrivateDnsName);
    case 'public_dns':
      return pick(instance.PublicDnsName);
    case 'ipv6':
      return pick(ipv6Of(instance));
  }
}

/** The instance's IPv6 address: its own field, else the primary interface's first (primary first) address. */
function ipv6Of(instance: Instance): string | undefined {
  if (instance.Ipv6Address) return instance.Ipv6Address;
  const interfaces = [...(instance.NetworkInterfaces ?? [])].sort((a, b) => (a.Attachment?.DeviceIndex ?? 99) - (b.Attachment?.DeviceIndex ?? 99));
  for (const ni of interfaces) {
    const addresses = ni.Ipv6Addresses ?? [];
    const primary = addresses.find((a) => a.IsPrimaryIpv6) ?? addresses[0];
    if (primary?.Ipv6Address) return primary.Ipv6Address;
  }
  return undefined;
}
