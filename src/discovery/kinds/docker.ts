import { z } from 'zod';
import { basicAuth, filePath, positiveDuration, quote, secret, tlsFields } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import { isMap } from '../../config/issues.js';
import type { AddIssue, RawMap } from '../../config/issues.js';
import { DEFAULT_PPROF_PORT, overrideFields, port } from '../../config/target-settings.js';
import { relabelField } from '../../config/relabel.js';
import { defineProviderKind, filterValues } from '../descriptor.js';

function schema(ctx: SchemaContext) {
  return z.strictObject({
    host: z
      .string()
      .refine((h) => /^(unix|tcp|http|https):\/\/.+/.test(h), { error: (iss) => `host ${quote(iss.input)} must be unix:///path/to/docker.sock or tcp://host:port` })
      .optional(),
    // `ca`, `cert`, `key` are for the engine API (tcp:// with TLS); the *_file
    // keys, as everywhere else, are for reaching the containers' pprof.
    tls: z
      .strictObject({
        ca: filePath(ctx).optional(),
        cert: filePath(ctx).optional(),
        key: filePath(ctx).optional(),
        ...tlsFields(ctx),
      })
      .optional(),
    filters: z.record(z.string().min(1), filterValues).default({}),
    network: z.string().min(1).optional(),
    host_address: z.string().min(1).default('127.0.0.1'),
    refresh: positiveDuration.default(30_000),
    ...overrideFields,
    ...relabelField,
    port: port.default(DEFAULT_PPROF_PORT),
    bearer_token: secret.optional(),
    bearer_token_file: filePath(ctx).optional(),
    basic_auth: basicAuth(ctx).optional(),
  });
}

export type DockerConfig = z.output<ReturnType<typeof schema>>;

/** The engine API's client certificate (clientIssues checks the *_file pair for the containers). */
function validate(block: RawMap, add: AddIssue): void {
  const tls = block['tls'];
  if (isMap(tls) && (tls['cert'] === undefined) !== (tls['key'] === undefined)) add(['tls'], 'tls.cert and tls.key go together: give both or neither');
}

/** Containers of a Docker engine by label filters, refreshed on its events. */
export const dockerDiscovery = defineProviderKind({
  kind: 'docker',
  schema,
  validate,
  create: async (config, source, deps) => (await import('../providers/docker.js')).createDockerProvider(config, source, deps),
});
