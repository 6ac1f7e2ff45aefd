import { z } from 'zod';
import { clientFields, clientIssues, size, url } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import { defineRepositoryKind, headers, repositoryFields } from '../descriptor.js';

function schema(ctx: SchemaContext) {
  return z.strictObject({
    endpoint: url.meta({
      description: 'Base URL of the OTLP receiver: http:// is plaintext (gRPC too), https:// TLS. http/protobuf posts to {endpoint}/v1development/profiles; grpc calls ProfilesService/Export.',
    }),
    protocol: z.enum(['http/protobuf', 'grpc']).default('http/protobuf').meta({ description: 'OTLP transport, as OTEL_EXPORTER_OTLP_PROTOCOL names them.' }),
    headers: headers.optional(),
    compression: z.enum(['gzip', 'none']).default('gzip').meta({ description: 'Compression of each request body.' }),
    cumulative: z
      .enum(['delta', 'as_scraped'])
      .default('delta')
      .meta({ description: 'Cumulative sample types (allocs, block, mutex, heap alloc_*): delta sends what happened between two scrapes; as_scraped the totals since the process started.' }),
    max_request_size: size
      .default(64 * 1024 ** 2)
      .meta({ description: 'Largest request body before compression (the OTLP spec recommends 64MiB); a larger profile is dropped, not sent.' }),
    ...repositoryFields,
    ...clientFields(ctx),
  }).meta({ description: 'An OpenTelemetry profiles receiver (the Collector, or a vendor taking OTLP): each profile converted to an OTLP ProfilesData.' });
}

export type OtlpConfig = z.output<ReturnType<typeof schema>>;

/** An OpenTelemetry (OTLP) profiles receiver: the Collector, Pyroscope, a vendor. */
export const otlp = defineRepositoryKind({
  kind: 'otlp',
  title: 'OTLP',
  schema,
  validate: clientIssues,
  create: async (name, config, context) => (await import('../otlp.js')).createOtlpRepository(name, config, context),
});
