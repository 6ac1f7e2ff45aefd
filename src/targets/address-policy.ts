import { BlockList, isIP, isIPv4 } from 'node:net';

/** `scrape.deny_cidrs`'s default: link-local (the cloud metadata services live there) and EC2's IPv6 metadata address. */
export const DEFAULT_DENY_CIDRS = ['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254/128'] as const;

/** Which IP addresses the daemon may connect to for scraping. */
export interface AddressPolicy {
  /** Why `ip` (an IP literal) is refused, naming the rule (`is in scrape.deny_cidrs 169.254.0.0/16`); undefined when allowed. */
  refusal(ip: string): string | undefined;
}

interface Rule {
  readonly text: string;
  readonly list: BlockList;
}

/** A CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address, or the reason it is not one. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | string {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return `${JSON.stringify(text)} is not a CIDR (like 10.0.0.0/8 or fd00::/8)`;
  const max = version === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return `${JSON.stringify(text)} has prefix length ${JSON.stringify(prefixText)}: use 0..${max}`;
  return { address, prefix: Number(prefixText), family: version === 4 ? 'ipv4' : 'ipv6' };
}

function ruleOf(text: string): Rule {
  const cidr = parseCidr(text);
  // the schema has already refused bad rules; a bad one here is a programming error
  if (typeof cidr === 'string') throw new Error(cidr);
  const list = new BlockList();
  list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  return { text, list };
}

// BlockList matches an IPv4 rule against the IPv4-mapped IPv6 form
// (::ffff:169.254.169.254) too, and an IPv6 ::ffff:0:0/96 rule against IPv4.
function inRule(rule: Rule, ip: string): boolean {
  return rule.list.check(ip, isIPv4(ip) ? 'ipv4' : 'ipv6');
}

/** The policy of `scrape.deny_cidrs` and `scrape.allow_cidrs`: a denied address is refused even when allowed. */
export function createAddressPolicy(deny: readonly string[], allow: readonly string[] | undefined): AddressPolicy {
  const denied = deny.map(ruleOf);
  const allowed = allow?.map(ruleOf);
  return {
    refusal(ip) {
      if (isIP(ip) === 0) return undefined;
      const hit = denied.find((r) => inRule(r, ip));
      if (hit) return `is in scrape.deny_cidrs ${hit.text}`;
      if (allowed && !allowed.some((r) => inRule(r, ip))) return `is not in scrape.allow_cidrs (${allowed.map((r) => r.text).join(', ')})`;
      return undefined;
    },
  };
}
