import { z } from 'zod';
import { clientFields, filePath, positiveDuration, quote, tlsFields } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import { isMap } from '../../config/issues.js';
import type { AddIssue, RawMap } from '../../config/issues.js';
import { DEFAULT_PPROF_PORT, overrideFields, port } from '../../config/target-settings.js';
import { relabelField } from '../../config/relabel.js';
import { defineProviderKind, filterValues } from '../descriptor.js';

function schema(ctx: SchemaContext) {
  // its tls is its own (below); the auth keys are everyone's
  const { bearer_token, bearer_token_file, basic_auth } = clientFields(ctx);
  return z
    .strictObject({
      host: z
        .string()
        .refine((h) => /^(unix|tcp|http|https):\/\/.+/.test(h), { error: (iss) => `host ${quote(iss.input)} must be unix:///path/to/docker.sock or tcp://host:port` })
        .optional()
        .meta({ description: 'The engine: unix:///path, tcp://host:port, http:// or https://. Default: DOCKER_HOST, else unix:///var/run/docker.sock.' }),
      // `ca`, `cert`, `key` are for the engine API (tcp:// with TLS); the *_file
      // keys, as everywhere else, are for reaching the containers' pprof.
      tls: z
        .strictObject({
          ca: filePath(ctx).optional().meta({ description: 'The engine API\'s CA certificate (PEM).' }),
          cert: filePath(ctx).optional().meta({ description: 'The client certificate (PEM) for the engine API, with key.' }),
          key: filePath(ctx).optional().meta({ description: 'The private key (PEM) of cert.' }),
          ...tlsFields(ctx),
        })
        .optional()
        .meta({ description: 'ca, cert, key: TLS to the engine API. ca_file, cert_file, key_file, server_name, insecure_skip_verify: TLS to the containers\' pprof, as under scrape:.' }),
      filters: z
        .record(z.string().min(1), filterValues)
        .default({})
        .meta({ description: 'The engine\'s container list filters (label, name, network, ancestor, …), a value or a list per name; status=running is always added.' }),
      network: z.string().min(1).optional().meta({ description: 'The network whose address to scrape. Default: the first network that gives the container an address.' }),
      host_address: z.string().min(1).default('127.0.0.1').meta({ description: 'The address of containers in host network mode.' }),
      refresh: positiveDuration.default(30_000).meta({ description: 'Time between two full lists; the engine\'s events bring changes sooner.' }),
      ...overrideFields,
      ...relabelField,
      port: port.default(DEFAULT_PPROF_PORT).meta({ description: 'The pprof port, unless a pprof.port label or an overrides: rule sets another.' }),
      bearer_token,
      bearer_token_file,
      basic_auth,
    })
    .meta({ description: 'Running containers of a Docker engine found by its filters (labels), followed through its events, with pprof.* labels.' });
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
