import { z } from 'zod';
import { clientFields, clientIssues, url } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import { defineRepositoryKind, headers, repositoryFields } from '../descriptor.js';

function schema(ctx: SchemaContext) {
  return z.strictObject({ url, headers: headers.optional(), ...repositoryFields, ...clientFields(ctx) });
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
