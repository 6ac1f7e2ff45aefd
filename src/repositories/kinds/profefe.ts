import { z } from 'zod';
import { clientFields, clientIssues, url } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import { defineRepositoryKind, headers, repositoryFields } from '../descriptor.js';

function schema(ctx: SchemaContext) {
  return z
    .strictObject({
      url: url.meta({ description: 'The collector, like http://profefe:10100; credentials in it are refused (use basic_auth or bearer_token_file).' }),
      headers: headers.optional(),
      ...repositoryFields,
      ...clientFields(ctx),
    })
    .meta({ description: 'A profefe collector: each profile is POSTed to {url}/api/0/profiles.' });
}

export type ProfefeConfig = z.output<ReturnType<typeof schema>>;

/** A profefe collector: `POST {url}/api/0/profiles`. */
export const profefe = defineRepositoryKind({
  kind: 'profefe',
  title: 'profefe',
  schema,
  validate: clientIssues,
  create: async (name, config) => (await import('../profefe.js')).createProfefeRepository(name, config),
});
