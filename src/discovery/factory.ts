import type { DiscoveryEntry } from '../config/index.js';
import type { Provider, ProviderDeps } from './provider.js';
import { PROVIDERS, providerOf } from './registry.js';
import type { ProviderConfig, ProviderKind } from './registry.js';

export function providerKindOf(entry: DiscoveryEntry): ProviderKind {
  const kind = providerOf(entry)?.kind;
  if (!kind) throw new Error('discovery entry without a provider');
  return kind;
}

/** Builds the provider of one discovery entry, by its kind's descriptor. */
export async function createProvider(entry: DiscoveryEntry, source: number, deps: ProviderDeps): Promise<Provider> {
  return createOfKind(providerKindOf(entry), entry, source, deps);
}

function createOfKind<K extends ProviderKind>(kind: K, entry: DiscoveryEntry, source: number, deps: ProviderDeps): Promise<Provider> {
  return PROVIDERS[kind].create(entry[kind] as ProviderConfig<K>, source, deps);
}
