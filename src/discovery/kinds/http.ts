import { z } from 'zod';
import { clientFields, clientIssues, positiveDuration, size, url } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import { isMap } from '../../config/issues.js';
import type { AddIssue, RawMap } from '../../config/issues.js';
import { relabelField } from '../../config/relabel.js';
import { overrideFields } from '../../config/target-settings.js';
import { defineProviderKind } from '../descriptor.js';
import { DEFAULT_MAX_GROUPS_SIZE, maxTargets } from './file.js';

function schema(ctx: SchemaContext) {
  return z.strictObject({
    url: url.meta({ description: 'An endpoint answering in Prometheus http_sd format: 200, application/json, a list of target groups.' }),
    refresh: positiveDuration.default(60_000).meta({ description: 'Time between two asks of url; a failed ask keeps the last good list.' }),
    headers: z
      .record(z.string().min(1), z.string())
      .optional()
      .meta({ description: 'Headers sent to url (and nowhere else), such as an API key. Never printed.' }),
    // The block's own tls and credentials (clientFields below) are for its
    // targets, as on every provider; these are for url alone, so neither
    // reaches the other.
    endpoint: z
      .strictObject(clientFields(ctx))
      .optional()
      .meta({ description: 'TLS and credentials for url. The block\'s own tls, bearer_token and basic_auth go to the targets it finds, as on every provider.' }),
    max_answer_size: size.default(DEFAULT_MAX_GROUPS_SIZE).meta({ description: 'A longer answer is refused whole, and the last good list kept.' }),
    max_targets: maxTargets,
    ...overrideFields,
    ...relabelField,
    ...clientFields(ctx),
  }).meta({ description: 'Targets from an HTTP endpoint answering in Prometheus\'s http_sd format (a service registry, an inventory API).' });
}

export type HttpConfig = z.output<ReturnType<typeof schema>>;

function validate(block: RawMap, add: AddIssue): void {
  const endpoint = block['endpoint'];
  if (isMap(endpoint)) clientIssues(endpoint, (path, message) => add(['endpoint', ...path], message));
}

/** Target groups from an HTTP endpoint, as Prometheus's http_sd reads them: an internal registry or inventory service. */
export const httpDiscovery = defineProviderKind({
  kind: 'http',
  schema,
  validate,
  create: async (config, source, deps) => (await import('../providers/http.js')).createHttpProvider(config, source, deps),
});
