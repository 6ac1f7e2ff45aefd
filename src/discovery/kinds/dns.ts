import { isIP } from 'node:net';
import { z } from 'zod';
import { clientFields, positiveDuration, quote } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import { relabelField } from '../../config/relabel.js';
import { overrideFields } from '../../config/target-settings.js';
import { defineProviderKind } from '../descriptor.js';

const recordTypes = ['SRV', 'A', 'AAAA'] as const;

/** `host`, `host:port`, `[v6]` or `[v6]:port` of a name server, its port 53 when not given. */
const nameserver = z.string().refine(
  (s) => {
    const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s) ?? /^([^:[\]]+)(?::(\d{1,5}))?$/.exec(s);
    const host = m?.[1];
    const portText = m?.[2];
    if (host === undefined) return isIP(s) === 6;
    return isIP(host) !== 0 && (portText === undefined || (Number(portText) >= 1 && Number(portText) <= 65535));
  },
  { error: (iss) => `nameserver ${quote(iss.input)} must be an IP address with an optional port, like 10.0.0.2, 10.0.0.2:5353 or [fd00::2]:53` },
);

function schema(ctx: SchemaContext) {
  return z.strictObject({
    names: z
      .array(z.string().min(1).regex(/^[A-Za-z0-9_.-]+$/, { error: (iss) => `name ${quote(iss.input)} is not a DNS name` }))
      .min(1, { error: 'names must list at least one DNS name' })
      .meta({ description: 'DNS names to query, like _pprof._tcp.example.com (SRV) or api.example.com (A, AAAA).' }),
    type: z
      .string()
      .transform((t) => t.toUpperCase())
      .pipe(z.enum(recordTypes, { error: (iss) => `type ${quote(iss.input)} is not one of ${recordTypes.join(', ')}` }))
      .prefault('SRV')
      .meta({ description: 'SRV (each record gives host and port), A or AAAA (the port is the block\'s port, else 6060).' }),
    nameservers: z
      .array(nameserver)
      .min(1, { error: 'nameservers must list at least one server; leave it out for the system resolver' })
      .optional()
      .meta({ description: 'Ask these servers instead of the system resolver (/etc/resolv.conf).' }),
    refresh: positiveDuration.default(30_000).meta({ description: 'Time between two lookups; a name whose lookup fails keeps its last good records.' }),
    ...overrideFields,
    ...relabelField,
    ...clientFields(ctx),
  }).meta({ description: 'Targets from DNS records: SRV (host and port), A or AAAA.' });
}

export type DnsConfig = z.output<ReturnType<typeof schema>>;

/** Targets from DNS records (SRV, A, AAAA), as Prometheus's dns_sd finds them. */
export const dnsDiscovery = defineProviderKind({
  kind: 'dns',
  schema,
  create: async (config, source, deps) => (await import('../providers/dns.js')).createDnsProvider(config, source, deps),
});
