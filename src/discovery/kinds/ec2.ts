import { z } from 'zod';
import { clientFields, positiveDuration, quote, url } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import type { AddIssue, RawMap } from '../../config/issues.js';
import { DEFAULT_PPROF_PORT, overrideFields, port } from '../../config/target-settings.js';
import { relabelField } from '../../config/relabel.js';
import { defineProviderKind, filterValues } from '../descriptor.js';

const addressKinds = ['private_ip', 'public_ip', 'private_dns', 'public_dns', 'ipv6'] as const;

function schema(ctx: SchemaContext) {
  return z
    .strictObject({
      region: z.string().min(1).optional().meta({ description: 'The region to ask. Default: AWS_REGION, the profile\'s region, or the instance\'s own.' }),
      regions: z.array(z.string().min(1)).min(1).optional().meta({ description: 'Several regions, asked together; a refresh publishes only when every one answered. Not with region.' }),
      profile: z.string().min(1).optional().meta({ description: 'A profile of the shared AWS config and credentials files (SSO included). Default: AWS_PROFILE.' }),
      role_arn: z
        .string()
        .regex(/^arn:[^:]+:iam::\d{12}:role\/.+$/, { error: (iss) => `${quote(iss.input)} is not an IAM role ARN` })
        .optional()
        .meta({ description: 'A role to assume first; EC2 is then called as the role.' }),
      external_id: z.string().optional().meta({ description: 'The external ID the role\'s trust policy asks for.' }),
      endpoint: url.optional().meta({ description: 'An EC2-compatible API (LocalStack, a test fake) instead of AWS\'s own.' }),
      filters: z
        .record(z.string().min(1), filterValues)
        .default({})
        .meta({ description: 'DescribeInstances filters, a value or a list per name ("tag:pprof": "true"); instance-state-name=running is added unless one filters on the state.' }),
      address: z
        .enum(addressKinds, { error: (iss) => `address ${quote(iss.input)} is not one of ${addressKinds.join(', ')}` })
        .default('private_ip')
        .meta({ description: 'Which address of the instance to scrape; an instance without it is dropped.' }),
      service_tag: z.string().min(1).default('Name').meta({ description: 'The tag that names the service; the instance id when the instance lacks it.' }),
      tag_labels: z.array(z.string().min(1)).default([]).meta({ description: 'Tags shipped as labels on every profile of the instance.' }),
      refresh: positiveDuration.default(60_000).meta({ description: 'Time between two full asks.' }),
      ...overrideFields,
      ...relabelField,
      port: port.default(DEFAULT_PPROF_PORT).meta({ description: 'The pprof port, unless a pprof.port tag or an overrides: rule sets another.' }),
      ...clientFields(ctx),
    })
    .meta({ description: 'EC2 instances found by DescribeInstances filters (tags), in one region or several, with pprof.* tags.' });
}

export type Ec2Config = z.output<ReturnType<typeof schema>>;

function validate(block: RawMap, add: AddIssue): void {
  if (block['region'] !== undefined && block['regions'] !== undefined) add(['regions'], 'set either region or regions, not both');
}

/** EC2 instances by DescribeInstances filters. The provider loads @aws-sdk/client-ec2 when it is built. */
export const ec2Discovery = defineProviderKind({
  kind: 'ec2',
  schema,
  validate,
  create: async (config, source, deps) => (await import('../providers/ec2.js')).createEc2Provider(config, source, deps),
});
