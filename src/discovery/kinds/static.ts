import { z } from 'zod';
import { clientFields } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import { isMap } from '../../config/issues.js';
import type { AddIssue, RawMap } from '../../config/issues.js';
import { overrideFields } from '../../config/target-settings.js';
import { parseAddress } from '../../targets/address.js';
import { relabelField } from '../../config/relabel.js';
import { defineProviderKind } from '../descriptor.js';
import type { NestedSettingsCheck } from '../descriptor.js';

function schema(ctx: SchemaContext) {
  const targetObject = z.strictObject({
    address: z.string().min(1).meta({ description: 'host:port, or a URL: scheme, address and path prefix.' }),
    ...overrideFields,
  });
  return z
    .strictObject({
      targets: z
        .array(z.union([z.string().min(1), targetObject]))
        .min(1, { error: 'targets must list at least one address' })
        .meta({ description: 'The targets, at least one: host:port, a URL (scheme, address, path prefix), or {address, ...} with settings of its own.' }),
      ...overrideFields,
      ...relabelField,
      ...clientFields(ctx),
    })
    .meta({ description: 'Targets listed in the file. The per-target settings here apply to each; a target\'s own come above them.' });
}

export type StaticConfig = z.output<ReturnType<typeof schema>>;

/** Each target's address, and the settings a target gives itself. */
function validate(block: RawMap, add: AddIssue, checkSettings: NestedSettingsCheck): void {
  const targets: unknown[] = Array.isArray(block['targets']) ? block['targets'] : [];
  targets.forEach((t, j) => {
    const address = typeof t === 'string' ? t : isMap(t) ? t['address'] : undefined;
    if (typeof address === 'string') {
      const parsed = parseAddress(address);
      if (!parsed.ok) add(typeof t === 'string' ? ['targets', j] : ['targets', j, 'address'], parsed.error);
    }
    if (isMap(t)) checkSettings(['targets', j], t);
  });
}

/** The targets listed in the file. */
export const staticDiscovery = defineProviderKind({
  kind: 'static',
  schema,
  validate,
  create: async (config, source) => (await import('../providers/static.js')).createStaticProvider(config, source),
});
