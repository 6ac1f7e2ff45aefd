import { Resolver } from 'node:dns/promises';
import type { DnsConfig } from '../../config/index.js';
import { joinHostPort } from '../../targets/address.js';
import type { Discovered } from '../../targets/index.js';
import { DiscoveryError } from '../provider.js';
import type { Provider, ProviderDeps } from '../provider.js';

/** Each query's wait and tries: a name server that does not answer fails the refresh in about ten seconds. */
const QUERY_TIMEOUT_MS = 5000;
const QUERY_TRIES = 2;

/** Answers that mean "no such records": an empty answer, not a failure (Prometheus reads NXDOMAIN so too). */
const EMPTY_CODES = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * Prometheus's dns_sd: each name's SRV, A or AAAA records, each record a
 * target. Through the system resolver's servers (/etc/resolv.conf) unless
 * `nameservers` are given. A name whose query fails (SERVFAIL, refused, no
 * answer in time) keeps its last good records while the other names' changes
 * apply; the failure is reported and counted.
 */
export function createDnsProvider(config: DnsConfig, source: number, deps: ProviderDeps): Provider {
  const where = `discovery[${source}].dns`;
  const log = deps.logger.child({ provider: 'dns', source: where });
  const last = new Map<string, Discovered[]>();
  const failing = new Map<string, string>();

  const query = async (resolver: Resolver, name: string): Promise<Discovered[]> => {
    try {
      switch (config.type) {
        case 'SRV':
          return (await resolver.resolveSrv(name)).map((r) => {
            const host = r.name.replace(/\.$/, '');
            return {
              address: joinHostPort(host, r.port),
              labels: {},
              meta: { __meta_dns_name: name, __meta_dns_srv_record_target: r.name, __meta_dns_srv_record_port: String(r.port) },
            };
          });
        case 'A':
          return (await resolver.resolve4(name)).map((ip) => ({ address: ip, labels: {}, meta: { __meta_dns_name: name } }));
        case 'AAAA':
          return (await resolver.resolve6(name)).map((ip) => ({ address: `[${ip}]`, labels: {}, meta: { __meta_dns_name: name } }));
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (EMPTY_CODES.has(code)) return [];
      throw new Error(`${config.type} ${name}: ${describe(code, err)}`, { cause: err });
    }
  };

  return {
    kind: 'dns',
    source,
    refreshInterval: config.refresh,
    async refresh(signal: AbortSignal): Promise<Discovered[]> {
      const resolver = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: QUERY_TRIES });
      if (config.nameservers) resolver.setServers(config.nameservers);
      const cancel = (): void => resolver.cancel();
      signal.addEventListener('abort', cancel);
      try {
        const results = await Promise.allSettled(config.names.map((name) => query(resolver, name)));
        signal.throwIfAborted();
        const errors: string[] = [];
        results.forEach((r, i) => {
          const name = config.names[i] as string;
          if (r.status === 'fulfilled') {
            last.set(name, r.value);
            if (failing.delete(name)) log.info({ name }, 'DNS name answers again');
          } else {
            const message = (r.reason as Error).message;
            if (failing.get(name) !== message) log.warn({ name, error: message, kept_targets: last.get(name)?.length ?? 0 }, 'DNS query failed; the name\'s last good records stay');
            failing.set(name, message);
            errors.push(message);
          }
        });
        const answer = config.names.flatMap((n) => last.get(n) ?? []);
        if (errors.length > 0) {
          throw new DiscoveryError(`${where}: ${errors.join('; ')} (the last good records of ${errors.length === 1 ? 'that name' : 'those names'} stay)`, { code: 'DnsQueryFailed', answer });
        }
        return answer;
      } finally {
        signal.removeEventListener('abort', cancel);
      }
    },
  };
}

function describe(code: string, err: unknown): string {
  switch (code) {
    case 'ESERVFAIL':
      return 'the name server answered SERVFAIL';
    case 'EREFUSED':
      return 'the name server refused the query';
    case 'ETIMEOUT':
      return `no answer within ${(QUERY_TIMEOUT_MS * QUERY_TRIES) / 1000}s: check nameservers (or /etc/resolv.conf)`;
    case 'ECONNREFUSED':
      return 'the name server refused the connection: check nameservers';
    default:
      return `${code || 'query failed'}: ${(err as Error).message}`;
  }
}
