import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress, LookupAllOptions, LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { buildConnector } from 'undici';
import type { AddressPolicy } from '../targets/index.js';

/** A connection refused by `scrape.deny_cidrs` or `allow_cidrs`. */
export class AddressRefusedError extends Error {
  override readonly name = 'AddressRefusedError';
  readonly code = 'ERR_ADDRESS_REFUSED';
}

// The builder refuses denied IP literals; host names (static names, EC2 DNS
// names) and whatever else reaches a socket are checked here, on the address
// the socket connects to. The lookup result is what the connection uses, so a
// name that resolves to an allowed address at one moment and a denied one the
// next (DNS rebinding) is checked each time it is used.
export function guardedConnector(options: Record<string, unknown>, policy: AddressPolicy): buildConnector.connector {
  const base = buildConnector({ ...options, lookup: guardedLookup(policy) });
  return (opts, callback) => {
    const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
    const why = isIP(host) !== 0 ? policy.refusal(host) : undefined;
    if (why !== undefined) {
      callback(new AddressRefusedError(`address ${host} ${why}: not connecting`), null);
      return;
    }
    base(opts, callback);
  };
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

function guardedLookup(policy: AddressPolicy) {
  return (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) {
        callback(err, []);
        return;
      }
      // one bad address refuses the name: a connection may try any of them
      for (const a of addresses) {
        const why = policy.refusal(a.address);
        if (why !== undefined) {
          callback(new AddressRefusedError(`host ${hostname} resolves to ${a.address}, which ${why}: not connecting`), []);
          return;
        }
      }
      const first = addresses[0];
      if (options.all === true) callback(null, addresses);
      else if (first) callback(null, first.address, first.family);
      else callback(Object.assign(new Error(`host ${hostname} resolves to no address`), { code: 'ENOTFOUND' }), []);
    });
  };
}
