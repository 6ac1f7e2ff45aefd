import type { ProviderKind } from '../config/index.js';
import type { Discovered } from './types.js';

/**
 * A target's metadata under the `__meta_*` names Prometheus gives its
 * provider's (discovery/aws/ec2.go, discovery/moby/docker.go), for
 * relabel_configs: a job's rules work here with few edits. EC2 and Docker
 * targets keep their metadata as labels and hidden labels, so the names are
 * made only when rules run; the providers that speak Prometheus's own formats
 * (file, http, dns) give theirs as `meta`.
 */
export function metaLabelsOf(provider: ProviderKind, found: Discovered): Record<string, string> {
  const out: Record<string, string> = {};
  const derive = DERIVED[provider];
  if (derive) derive(found, out);
  if (found.meta) Object.assign(out, found.meta);
  return out;
}

type Derive = (found: Discovered, out: Record<string, string>) => void;

function copy(from: Readonly<Record<string, string>> | undefined, names: Readonly<Record<string, string>>, out: Record<string, string>): void {
  if (!from) return;
  for (const [ours, theirs] of Object.entries(names)) {
    const v = from[ours];
    if (v !== undefined) out[theirs] = v;
  }
}

/** Hidden `<prefix><name>` (tag_*, label_*) as `<meta><name>`. */
function prefixed(from: Readonly<Record<string, string>> | undefined, prefix: string, meta: string, out: Record<string, string>): void {
  if (!from) return;
  for (const [k, v] of Object.entries(from)) if (k.startsWith(prefix)) out[meta + k.slice(prefix.length)] = v;
}

const EC2_LABELS = {
  instance_id: '__meta_ec2_instance_id',
  instance_type: '__meta_ec2_instance_type',
  availability_zone: '__meta_ec2_availability_zone',
  region: '__meta_ec2_region',
  vpc_id: '__meta_ec2_vpc_id',
  image_id: '__meta_ec2_ami',
};
const EC2_HIDDEN = {
  subnet_id: '__meta_ec2_subnet_id',
  instance_state: '__meta_ec2_instance_state',
  private_ip: '__meta_ec2_private_ip',
  public_ip: '__meta_ec2_public_ip',
  private_dns: '__meta_ec2_private_dns_name',
  public_dns: '__meta_ec2_public_dns_name',
  architecture: '__meta_ec2_architecture',
  lifecycle: '__meta_ec2_instance_lifecycle',
};

const DERIVED: Partial<Record<ProviderKind, Derive>> = {
  ec2(found, out) {
    copy(found.labels, EC2_LABELS, out);
    copy(found.hidden, EC2_HIDDEN, out);
    // Prometheus lists every IPv6 address between commas; the provider keeps the primary one
    const ipv6 = found.hidden?.['ipv6'];
    if (ipv6 !== undefined) out['__meta_ec2_ipv6_addresses'] = `,${ipv6},`;
    prefixed(found.hidden, 'tag_', '__meta_ec2_tag_', out);
  },
  docker(found, out) {
    const name = found.labels['container_name'];
    // Prometheus gives the name as the engine does, with its leading slash; the id here is the short one
    if (name !== undefined) out['__meta_docker_container_name'] = `/${name}`;
    copy(found.labels, { container_id: '__meta_docker_container_id', image: '__meta_docker_container_image' }, out);
    prefixed(found.hidden, 'label_', '__meta_docker_container_label_', out);
  },
};
