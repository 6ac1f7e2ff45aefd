import { z } from 'zod';
import { clientFields, clientIssues, duration, size, url } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import { defineRepositoryKind, headers, repositoryFields } from '../descriptor.js';
import { targetLabelsProblem } from '../pyroscope-labels.js';

function schema(ctx: SchemaContext) {
  return z.strictObject({
    url: url.meta({ description: 'The server (or Grafana Cloud Profiles), like http://pyroscope:4040; credentials in it are refused (use basic_auth or bearer_token_file).' }),
    tenant: z.string().min(1).optional().meta({ description: 'Sent as X-Scope-OrgID, for a multi-tenant server.' }),
    headers: headers.optional(),
    // Pyroscope's own defaults (pkg/validation/limits.go); 0 turns a bound off, as there
    reject_older_than: duration.default(3_600_000).meta({ description: 'The server\'s validation.reject-older-than (default 1h): older profiles are dropped, not sent. 0s: no limit.' }),
    reject_newer_than: duration.default(600_000).meta({ description: 'The server\'s validation.reject-newer-than (default 10m): profiles further ahead are dropped, not sent. 0s: no limit.' }),
    max_label_names_per_series: z.int().min(0).default(30).meta({ description: 'The server\'s limit of the same name (default 30); a series with more is not sent. 0: no limit.' }),
    max_profile_size: size.default(4 * 1024 ** 2).meta({ description: 'The server\'s max_profile_size_bytes, uncompressed (default 4MiB); a larger profile is not sent.' }),
    max_profile_stacktrace_samples: z.int().min(0).default(16_000).meta({ description: 'The server\'s limit of the same name (default 16000); a profile with more samples is not sent. 0: no limit.' }),
    ...repositoryFields,
    ...clientFields(ctx),
  }).meta({ description: 'Grafana Pyroscope (or Grafana Cloud Profiles) through its push API; cumulative types are sent as deltas.' });
}

export type PyroscopeConfig = z.output<ReturnType<typeof schema>>;

/** Grafana Pyroscope (or Grafana Cloud Profiles) through its push API. */
export const pyroscope = defineRepositoryKind({
  kind: 'pyroscope',
  title: 'Pyroscope',
  schema,
  validate: clientIssues,
  create: async (name, config, context) => (await import('../pyroscope.js')).createPyroscopeRepository(name, config, context),
  // labels on samples count too, but are known only when a profile is sent, and checked then
  refusesTarget: (config, target) => targetLabelsProblem(target.service, target.labels, config.max_label_names_per_series),
});
