import { z } from 'zod';
import { clientFields, clientIssues, quote } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import type { AddIssue, RawMap } from '../../config/issues.js';
import { redactUrl } from '../../redact.js';
import { defineRepositoryKind, headers, repositoryFields } from '../descriptor.js';

/** host:port, as Parca's agent takes --remote-store-address, or an http(s) URL. */
const address = z.string().superRefine((v, ctx) => {
  if (/^https?:\/\//i.test(v)) {
    try {
      new URL(v);
      return;
    } catch {
      // said below
    }
  } else if (/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+):\d{1,5}$/i.test(v)) return;
  ctx.addIssue({ code: 'custom', message: `${quote(redactUrl(v))} is not host:port, http://host:port (plaintext) or https://host:port (TLS)` });
});

function schema(ctx: SchemaContext) {
  return z.strictObject({
    url: address.meta({
      description: "Parca's gRPC address: host:port (TLS unless insecure), http://host:port (plaintext) or https://host:port (TLS); ProfileStoreService/WriteRaw is called there.",
    }),
    insecure: z.boolean().default(false).meta({ description: "Plaintext gRPC to a host:port url, as Parca agent's --remote-store-insecure." }),
    headers: headers.optional(),
    ...repositoryFields,
    ...clientFields(ctx),
  }).meta({ description: 'A Parca server: each profile sent as scraped through ProfileStoreService/WriteRaw over gRPC.' });
}

export type ParcaConfig = z.output<ReturnType<typeof schema>>;

function validate(block: RawMap, add: AddIssue): void {
  clientIssues(block, add);
  const url = block['url'];
  if (block['insecure'] === true && typeof url === 'string' && /^https:\/\//i.test(url)) {
    add(['insecure'], 'insecure: true asks for plaintext, and the url says https://: use http:// or host:port with insecure, or drop insecure');
  }
}

/** Parca (or Polar Signals Cloud) through its native gRPC API. */
export const parca = defineRepositoryKind({
  kind: 'parca',
  title: 'Parca',
  schema,
  validate,
  create: async (name, config, context) => (await import('../parca.js')).createParcaRepository(name, config, context),
});
