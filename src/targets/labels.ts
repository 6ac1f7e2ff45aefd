import type { ProviderKind } from '../config/index.js';

const INVALID = /[^a-zA-Z0-9_]/g;

/**
 * A label name from free text (a tag key, a container label): characters
 * outside [a-zA-Z0-9_] become `_`, and a leading digit gets a `_` in front.
 * Returns undefined for an empty name. Names of this rule pass Prometheus's
 * and Pyroscope's checks unchanged: the Pyroscope adapter sends its label
 * names through it too (pyroscopeLabelName).
 */
export function sanitizeLabelName(name: string): string | undefined {
  const cleaned = name.replace(INVALID, '_');
  if (cleaned === '') return undefined;
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned;
}

// Who a profile comes from: the address, the provider, and what the provider
// itself reports about the machine or container. A tag or a container label
// that set one of these could pass one target off as another.
const OWNED_LABELS: Record<ProviderKind, ReadonlySet<string>> = {
  static: new Set(['instance', 'provider']),
  ec2: new Set(['instance', 'provider', 'instance_id', 'instance_type', 'availability_zone', 'region', 'vpc_id', 'image_id']),
  docker: new Set(['instance', 'provider', 'container_name', 'container_id', 'image', 'compose_project', 'compose_service']),
  // a discovery file's labels are the target's own; only who it is stays the daemon's
  file: new Set(['instance', 'provider']),
  http: new Set(['instance', 'provider']),
  dns: new Set(['instance', 'provider']),
};

/** The labels of a provider's targets that only the daemon and the config file set, never `pprof.label.*` metadata. */
export function ownedLabelsOf(provider: ProviderKind): ReadonlySet<string> {
  return OWNED_LABELS[provider];
}
