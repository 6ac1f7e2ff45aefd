import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Config, MatchValue, OverrideSettings } from '../config/index.js';
import type { RelabelRule } from '../config/relabel.js';
import type { Labels } from '../profiles/profile.js';
import { formatDuration } from '../config/index.js';
import { CPU_TYPE, DEFAULT_TRACE_SECONDS, defaultCpuSeconds, shortestCronGap } from '../config/schema.js';
import { DEFAULT_PPROF_PORT } from '../config/target-settings.js';
import { TRACE_TYPE } from '../profiles/profile.js';
import type { TargetSeries } from '../repositories/descriptor.js';
import { repositoryKindOf, repositoryNameOf, targetRefusalOf } from '../repositories/factory.js';
import { REPOSITORIES } from '../repositories/registry.js';
import { joinHostPort, parseAddress } from './address.js';
import { createAddressPolicy } from './address-policy.js';
import type { AddressPolicy } from './address-policy.js';
import { applyDirectives, applySettings } from './draft.js';
import type { Draft } from './draft.js';
import { ownedLabelsOf } from './labels.js';
import { relabelDraft, rulesOf } from './relabel-step.js';
import type { BuildResult, Discovered, DropKind, DroppedTarget, NotSentTo, Target, TargetGroup, TargetProfile, Timing } from './types.js';

const DEFAULT_PATH_PREFIX = '/debug/pprof';

/**
 * Turns what discovery found into targets: defaults, then scrape:/profiles:,
 * the provider block, the target's own metadata, relabel_configs, then
 * overrides: rules in order. One pure function, so the dry run prints exactly what the daemon runs.
 */
export function buildTargets(config: Config, groups: readonly TargetGroup[]): BuildResult {
  const targets: Target[] = [];
  const dropped: DroppedTarget[] = [];
  const seen = new Map<string, Target>();
  const policy = addressPolicyOf(config);
  for (const group of groups) {
    for (const found of group.targets) {
      const result = buildOne(config, policy, group, found);
      if ('reason' in result) {
        dropped.push(result);
        continue;
      }
      const first = seen.get(result.id);
      if (first) {
        dropped.push(droppedOf(group, found, 'duplicate', `duplicate of target ${first.id} (${first.address}, from discovery[${first.source}])`, result.address));
        continue;
      }
      seen.set(result.id, result);
      targets.push(result);
    }
  }
  if (!config.shard) return { targets, dropped };
  const { count, index } = config.shard;
  const kept: Target[] = [];
  for (const t of targets) {
    const shard = shardOf(t.id, count);
    if (shard === index) kept.push(t);
    else dropped.push({ provider: t.provider, source: t.source, address: t.address, labels: t.labels, kind: 'shard', reason: `belongs to shard ${shard} of ${count}; this daemon is shard ${index}` });
  }
  return { targets: kept, dropped };
}

const policies = new WeakMap<Config, AddressPolicy>();

/** The deny and allow lists of a config, built once per config (the builder runs at every discovery change). */
export function addressPolicyOf(config: Config): AddressPolicy {
  let policy = policies.get(config);
  if (!policy) {
    policy = createAddressPolicy(config.scrape.deny_cidrs, config.scrape.allow_cidrs);
    policies.set(config, policy);
  }
  return policy;
}

export function shardOf(id: string, count: number): number {
  return Number.parseInt(id.slice(0, 8), 16) % count;
}

function buildOne(config: Config, policy: AddressPolicy, group: TargetGroup, found: Discovered): Target | DroppedTarget {
  const entry = config.discovery[group.source];
  const block = (entry?.[group.provider] ?? {}) as OverrideSettings & { relabel_configs?: RelabelRule[] };
  const fail = (kind: DropKind, reason: string, address?: string): DroppedTarget => droppedOf(group, found, kind, reason, address);

  if (found.address === undefined) return fail('no_address', found.addressError ?? 'discovery found no address for it');
  const parsed = parseAddress(found.address);
  if (!parsed.ok) return fail('invalid_address', parsed.error, found.address);
  const addr = parsed.value;

  const draft: Draft = {
    service: undefined,
    host: addr.host,
    port: DEFAULT_PPROF_PORT,
    scheme: 'http',
    pathPrefix: DEFAULT_PATH_PREFIX,
    labels: { ...found.labels },
    profiles: Object.entries(config.profiles)
      .filter(([, t]) => t.enabled)
      .map(([name]) => name),
    interval: undefined,
  };
  const explicitLabels: Record<string, string> = { ...config.scrape.labels };

  // provider block
  applySettings(draft, block, explicitLabels);
  draft.service = found.fallbackService ?? draft.service;
  if (block.service !== undefined) draft.service = block.service;
  if (found.service !== undefined) draft.service = found.service;
  // the target's own metadata: the address as written, a static entry's fields, tags or labels
  if (addr.port !== undefined) draft.port = addr.port;
  if (addr.scheme !== undefined) draft.scheme = addr.scheme;
  if (addr.pathPrefix !== undefined) draft.pathPrefix = addr.pathPrefix;
  if (found.settings) applySettings(draft, found.settings, explicitLabels);
  // Tags and labels may choose https but not take it away from what the file set.
  let downgrade: string | undefined;
  if (found.directives) {
    const noun = group.directiveNoun ?? 'label';
    const configScheme = draft.scheme;
    const bad = applyDirectives(draft, found.directives, explicitLabels, config, noun, ownedLabelsOf(group.provider));
    if (bad) return fail('invalid_metadata', bad, joinHostPort(draft.host, draft.port));
    if (configScheme === 'https' && draft.scheme === 'http') {
      downgrade = `${noun} pprof.scheme: "http" would turn this target's https (set by discovery[${group.source}].${group.provider}) into plain http: ${noun}s may choose https, never drop it; remove the ${noun}`;
    }
  }
  Object.assign(draft.labels, explicitLabels);

  // relabel_configs: the entry's own, then the top-level ones; the daemon's own rules still apply after them
  const rules = rulesOf(config, group, block);
  let discoveredLabels: Labels | undefined;
  if (rules.rules.length > 0) {
    const outcome = relabelDraft(draft, found, group, rules);
    discoveredLabels = outcome.discovered;
    if (!outcome.ok) return { ...fail('relabel', outcome.reason, joinHostPort(draft.host, draft.port)), labels: { ...outcome.discovered } };
    if (outcome.schemeSet) downgrade = undefined;
  }

  // overrides: rules, in order; each sees what the ones before it set
  for (let i = 0; i < config.overrides.length; i++) {
    const rule = config.overrides[i];
    if (!rule || !matches(rule.match, draft, found, group)) continue;
    if (rule.drop) return fail('override', `dropped by overrides[${i}] (match ${describeMatch(rule.match)})`, joinHostPort(draft.host, draft.port));
    if (rule.scheme !== undefined) downgrade = undefined;
    applySettings(draft, rule, draft.labels);
  }

  const address = joinHostPort(draft.host, draft.port);
  if (downgrade !== undefined) return fail('invalid_metadata', downgrade, address);
  const refused = refusedAddress(draft.host, address, policy);
  if (refused !== undefined) return fail(refused.kind, refused.reason, address);
  const service = draft.service ?? draft.host;
  const labels: Record<string, string> = { instance: address, provider: group.provider, ...draft.labels };

  const timing: Timing =
    draft.interval !== undefined || config.scrape.schedule === undefined
      ? { kind: 'interval', ms: draft.interval ?? config.scrape.interval }
      : { kind: 'cron', schedule: config.scrape.schedule, spreadMs: config.scrape.spread };

  const profiles: TargetProfile[] = [];
  for (const type of draft.profiles) {
    const def = config.profiles[type];
    if (!def) return fail('invalid_settings', `profile type ${JSON.stringify(type)} is not defined under profiles:`, address);
    if (def.seconds !== undefined && timing.kind === 'interval' && def.seconds * 1000 >= timing.ms) {
      return fail('invalid_settings', `interval ${formatDuration(timing.ms)} is not longer than profiles.${type}.seconds (${def.seconds}s)`, address);
    }
    const seconds = def.seconds ?? (type === CPU_TYPE ? defaultCpuSeconds(periodOf(timing, config.scrape.interval)) : type === TRACE_TYPE ? DEFAULT_TRACE_SECONDS : undefined);
    const path = def.path === DEFAULT_PATH_PREFIX || def.path.startsWith(`${DEFAULT_PATH_PREFIX}/`) ? draft.pathPrefix + def.path.slice(DEFAULT_PATH_PREFIX.length) : def.path;
    const url = `${draft.scheme}://${address}${path}${seconds !== undefined ? `?seconds=${seconds}` : ''}`;
    profiles.push({ type, url, seconds, delta: def.delta });
  }

  const refusals = refusingRepositories(config, { service, labels });
  if (refusals.length > 0 && refusals.length === config.repositories.length) {
    return fail('no_repository', `no repository can take its profiles: ${refusals.map((r) => `${r.title} repository ${r.repository}: ${r.reason}`).join('; ')}`, address);
  }
  const notSentTo = refusals.map(({ repository, reason }): NotSentTo => ({ repository, reason }));
  const id = targetId(draft.scheme, address, draft.pathPrefix, service, labels);
  return {
    id,
    provider: group.provider,
    source: group.source,
    service,
    address,
    scheme: draft.scheme,
    labels,
    ...(discoveredLabels !== undefined ? { discoveredLabels } : {}),
    timing,
    profiles,
    ...(notSentTo.length > 0 ? { notSentTo } : {}),
  };
}

/** A repository that can never take a target's profiles, and how messages name its kind. */
interface Refusal extends NotSentTo {
  readonly title: string;
}

/** The repositories that can never take a target's profiles, whatever they hold, as each one's kind judges from the target alone. */
function refusingRepositories(config: Config, target: TargetSeries): Refusal[] {
  const out: Refusal[] = [];
  for (const entry of config.repositories) {
    const reason = targetRefusalOf(entry, target);
    if (reason !== undefined) out.push({ repository: repositoryNameOf(entry), reason, title: REPOSITORIES[repositoryKindOf(entry)].title });
  }
  return out;
}

let cronGap: { schedule: string; ms: number | undefined } | undefined;

/** The time between a target's ticks: its interval, or the shortest gap of its cron schedule (computed once per schedule). */
function periodOf(timing: Timing, fallbackMs: number): number {
  if (timing.kind === 'interval') return timing.ms;
  if (cronGap?.schedule !== timing.schedule) cronGap = { schedule: timing.schedule, ms: shortestCronGap(timing.schedule) };
  return cronGap.ms ?? fallbackMs;
}

/**
 * The address's host as the URL parser (and so the connection) reads it
 * (2852039166 and 0xa9fea9fe are 169.254.169.254 there), checked against
 * the deny and allow lists. Host names are checked when they resolve, at
 * connect time (see http/address-guard.ts).
 */
function refusedAddress(host: string, address: string, policy: AddressPolicy): Pick<DroppedTarget, 'kind' | 'reason'> | undefined {
  let hostname: string;
  try {
    hostname = new URL(`http://${address}/`).hostname;
  } catch {
    return { kind: 'invalid_address', reason: `host ${JSON.stringify(host)} is not a valid host name or IP address` };
  }
  const ip = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (isIP(ip) === 0) return undefined;
  const why = policy.refusal(ip);
  if (why === undefined) return undefined;
  const shown = isIP(host) !== 0 ? host : `${host} (${ip})`;
  return { kind: 'address_policy', reason: `address ${shown} ${why}` };
}

function matches(match: Readonly<Record<string, MatchValue>>, draft: Draft, found: Discovered, group: TargetGroup): boolean {
  const view: Record<string, string> = {
    ...found.hidden,
    ...draft.labels,
    instance: draft.labels['instance'] ?? joinHostPort(draft.host, draft.port),
    provider: group.provider,
    service: draft.service ?? draft.host,
    address: joinHostPort(draft.host, draft.port),
    scheme: draft.scheme,
  };
  for (const [key, m] of Object.entries(match)) {
    const value = view[key] ?? '';
    if ('equals' in m ? value !== m.equals : !m.regex.test(value)) return false;
  }
  return true;
}

function describeMatch(match: Readonly<Record<string, MatchValue>>): string {
  return Object.entries(match)
    .map(([k, m]) => `${k}=${'equals' in m ? m.equals : String(m.regex)}`)
    .join(', ');
}

function droppedOf(group: TargetGroup, found: Discovered, kind: DropKind, reason: string, address?: string): DroppedTarget {
  return {
    provider: group.provider,
    source: group.source,
    address: address ?? found.address,
    labels: { ...found.hidden, ...found.labels },
    kind,
    reason,
  };
}

export function targetId(scheme: string, address: string, pathPrefix: string, service: string, labels: Readonly<Record<string, string>>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k]]);
  return createHash('sha256').update(JSON.stringify([scheme, address, pathPrefix, service, sorted])).digest('hex').slice(0, 16);
}

/** Interval as the dry run shows it. */
export function describeTiming(t: Timing): { interval?: string; schedule?: string; spread?: string } {
  return t.kind === 'interval' ? { interval: formatDuration(t.ms) } : { schedule: t.schedule, spread: formatDuration(t.spreadMs) };
}
