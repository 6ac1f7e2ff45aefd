import { z } from 'zod';
import { url } from '../../config/fields.js';
import { defineRepositoryKind, repositoryFields } from '../descriptor.js';

function schema() {
  return z.strictObject({
    bucket: z.string().min(1),
    prefix: z.string().default(''),
    region: z.string().min(1).optional(),
    endpoint: url.optional(),
    force_path_style: z.boolean().default(false),
    storage_class: z.string().min(1).optional(),
    ...repositoryFields,
  });
}

export type S3Config = z.output<ReturnType<typeof schema>>;

/** S3 or an S3-compatible store, one object per profile. The adapter loads @aws-sdk/client-s3 when it is built. */
export const s3 = defineRepositoryKind({
  kind: 's3',
  title: 'S3',
  schema,
  create: async (name, config, context) => (await import('../s3.js')).createS3Repository(name, config, context),
});
