import type { z } from 'zod';
import type { DiscoveryEntry } from '../config/schema.js';
import { kindOf } from '../config/kind-of.js';
import type { ProviderDescriptor } from './descriptor.js';
import { dnsDiscovery } from './kinds/dns.js';
import { dockerDiscovery } from './kinds/docker.js';
import { ec2Discovery } from './kinds/ec2.js';
import { fileDiscovery } from './kinds/file.js';
import { httpDiscovery } from './kinds/http.js';
import { staticDiscovery } from './kinds/static.js';

// Every discovery kind under the key its `discovery:` entries use. The config
// schema, its JSON Schema, validation, the provider factory and the scrape
// clients all read this record: a kind is its module in kinds/, its provider
// in providers/, and its line here.
const descriptors = { static: staticDiscovery, ec2: ec2Discovery, docker: dockerDiscovery, file: fileDiscovery, http: httpDiscovery, dns: dnsDiscovery };

export type ProviderKind = keyof typeof descriptors;

/** The schema of one kind's block. */
export type ProviderSchema<K extends ProviderKind> = ReturnType<(typeof descriptors)[K]['schema']>;

/** One kind's settings, as its schema gives them. */
export type ProviderConfig<K extends ProviderKind> = z.output<ProviderSchema<K>>;

export const PROVIDERS: { readonly [K in ProviderKind]: ProviderDescriptor<K, ProviderSchema<K>> } = descriptors;

/** In the order of the record, which messages and the JSON Schema follow. */
export const PROVIDER_KINDS = Object.keys(PROVIDERS) as readonly ProviderKind[];

/** The kind of a discovery entry and its block; undefined for an entry with none (validation refuses those). */
export function providerOf(entry: DiscoveryEntry): { readonly kind: ProviderKind; readonly block: NonNullable<DiscoveryEntry[ProviderKind]> } | undefined {
  return kindOf(PROVIDER_KINDS, entry);
}
