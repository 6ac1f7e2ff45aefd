import { z } from 'zod';
import { positiveDuration, size } from '../../config/fields.js';
import { defineRepositoryKind, repositoryFields } from '../descriptor.js';

function schema() {
  return z
    .strictObject({
      path: z.string().min(1).meta({ description: 'The folder; a relative path is relative to the working directory.' }),
      retention: z
        .strictObject({
          max_age: positiveDuration.optional().meta({ description: 'Files older than this go.' }),
          max_size: size.optional().meta({ description: 'Past this total, the oldest files go.' }),
        })
        .optional()
        .meta({ description: 'What the folder keeps; without it, every file stays.' }),
      ...repositoryFields,
    })
    .meta({ description: 'Files in a local folder, one per profile (go tool pprof opens them), each with a JSON sidecar of its labels.' });
}

export type DirectoryConfig = z.output<ReturnType<typeof schema>>;

/** Files in a local folder, one per profile, with a JSON sidecar of its labels. */
export const directory = defineRepositoryKind({
  kind: 'directory',
  title: 'directory',
  schema,
  create: async (name, config) => (await import('../directory.js')).createDirectoryRepository(name, config),
});
