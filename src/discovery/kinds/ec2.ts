import { z } from 'zod';
import { clientFields, positiveDuration, quote, url } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import type { AddIssue, RawMap } from '../../config/issues.js';
import { DEFAULT_PPROF_PORT, overrideFields, port } from '../../config/target-settings.js';
import { relabelField } from '../../config/relabel.js';
import { defineProviderKind, filterValues } from '../descriptor.js';

const addressKinds = ['private_ip', 'public_ip', 'private_dns', 'public_dns', 'ipv6'] as const;

function schema(ctx: SchemaContext) {
  return z.strictObject({
    region: z.string().min(1).optional(),
    regions: z.array(z.string().min(1)).min(1).optional(),
    profile: z.string().min(1).optional(),
    role_arn: z.string().regex(/^arn:[^:]+:iam::\d{12}:role\/.+$/, { error: (iss) => `${quote(iss.input)} is not an IAM role ARN` }).optional(),
    external_id: z.string().optional(),
    endpoint: url.optional(),
    filters: z.record(z.string().min(1), filterValues).default({}),
    address: z.enum(addressKinds, { error: (iss) => `address ${quote(iss.input)} is not one of ${addressKinds.join(', ')}` }).default('private_ip'),
    service_tag: z.string().min(1).default('Name'),
    tag_labels: z.array(z.string().min(1)).default([]),
    refresh: positiveDuration.default(60_000),
    ...overrideFields,
    ...relabelField,
    port: port.default(DEFAULT_PPROF_PORT),
    ...clientFields(ctx),
  });
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
