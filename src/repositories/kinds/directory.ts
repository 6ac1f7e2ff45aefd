import { z } from 'zod';
import { positiveDuration, size } from '../../config/fields.js';
import { defineRepositoryKind, repositoryFields } from '../descriptor.js';

function schema() {
  return z.strictObject({
    path: z.string().min(1),
    retention: z.strictObject({ max_age: positiveDuration.optional(), max_size: size.optional() }).optional(),
    ...repositoryFields,
  });
}

export type DirectoryConfig = z.output<ReturnType<typeof schema>>;

/** Files in a local folder, one per profile, with a JSON sidecar of its labels. */
export const directory = defineRepositoryKind({
  kind: 'directory',
  title: 'directory',
  schema,
  create: async (name, config) => (await import('../directory.js')).createDirectoryRepository(name, config),
});
