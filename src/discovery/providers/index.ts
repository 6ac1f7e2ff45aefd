import type { DiscoveryEntry, ProviderKind } from '../../config/index.js';
import { providerOf } from '../../config/index.js';
import type { Provider, ProviderDeps } from '../provider.js';
import { createStaticProvider } from './static.js';

export function providerKindOf(entry: DiscoveryEntry): ProviderKind {
  const kind = providerOf(entry)?.kind;
  if (!kind) throw new Error('discovery entry without a provider');
  return kind;
}

/**
 * Builds the provider of one discovery entry. Cloud SDKs load only when an
 * entry needs them: the EC2 client alone weighs about a hundred MiB.
 */
export async function createProvider(entry: DiscoveryEntry, source: number, _deps: ProviderDeps): Promise<Provider> {
  if (entry.static) return createStaticProvider(entry.static, source);
  if (entry.ec2) return (await import('./ec2.js')).createEc2Provider(entry.ec2, source, _deps);
  if (entry.docker) return (await import('./docker.js')).createDockerProvider(entry.docker, source, _deps);
  throw new Error(`discovery[${source}]: ${providerKindOf(entry)} discovery is not yet supported by this version`);
}
