import { z } from 'zod';
import { url } from '../../config/fields.js';
import { defineRepositoryKind, repositoryFields } from '../descriptor.js';

function schema() {
  return z
    .strictObject({
      bucket: z.string().min(1).meta({ description: 'The bucket.' }),
      prefix: z.string().default('').meta({ description: 'A key prefix for every object; include the trailing /.' }),
      region: z.string().min(1).optional().meta({ description: 'The bucket\'s region. Default: the AWS environment (AWS_REGION, the profile\'s); with endpoint and none there, us-east-1.' }),
      endpoint: url.optional().meta({ description: 'An S3-compatible store (MinIO, Ceph, …) instead of AWS\'s own.' }),
      force_path_style: z.boolean().default(false).meta({ description: 'The bucket in the path rather than the host name, as most S3-compatible stores want.' }),
      storage_class: z.string().min(1).optional().meta({ description: 'The storage class of each object. Default: the bucket\'s.' }),
      ...repositoryFields,
    })
    .meta({ description: 'S3 or an S3-compatible store, one object per profile.' });
}

export type S3Config = z.output<ReturnType<typeof schema>>;

/** S3 or an S3-compatible store, one object per profile. The adapter loads @aws-sdk/client-s3 when it is built. */
export const s3 = defineRepositoryKind({
  kind: 's3',
  title: 'S3',
  schema,
  create: async (name, config, context) => (await import('../s3.js')).createS3Repository(name, config, context),
});
