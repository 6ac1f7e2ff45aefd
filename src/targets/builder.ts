import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Config, MatchValue, OverrideSettings } from '../config/index.js';
import { formatDuration, parseDuration } from '../config/index.js';
import { CPU_TYPE, DEFAULT_PPROF_PORT, DEFAULT_TRACE_SECONDS, defaultCpuSeconds, MIN_INTERVAL_MS, shortestCronGap } from '../config/schema.js';
import { TRACE_TYPE } from '../profiles/profile.js';
import type { Labels } from '../profiles/profile.js';
import { repositoryNameOf } from '../repositories/factory.js';
import { targetLabelsProblem } from '../repositories/pyroscope-labels.js';
import { joinHostPort, parseAddress, parsePort } from './address.js';
import { createAddressPolicy } from './address-policy.js';
import type { AddressPolicy } from './address-policy.js';
import { ownedLabelsOf, sanitizeLabelName } from './labels.js';
import { pathProblem } from './path.js';
import type { BuildResult, Discovered, DroppedTarget, NotSentTo, Target, TargetGroup, TargetProfile, Timing } from './types.js';

const DEFAULT_PATH_PREFIX = '/debug/pprof';

/**
 * Turns what discovery found into targets: defaults, then scrape:/profiles:,
 * the provider block, the target's own metadata, then overrides: rules in
 * order. One pure function, so the dry run prints exactly what the daemon runs.
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
        dropped.push(droppedOf(group, found, `duplicate of target ${first.id} (${first.address}, from discovery[${first.source}])`, result.address));
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
    else dropped.push({ provider: t.provider, source: t.source, address: t.address, labels: t.labels, reason: `belongs to shard ${shard} of ${count}; this daemon is shard ${index}` });
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

interface Draft {
  service: string | undefined;
  host: string;
  port: number;
  scheme: 'http' | 'https';
  pathPrefix: string;
  labels: Record<string, string>;
  profiles: string[];
  interval: number | undefined;
}

function buildOne(config: Config, policy: AddressPolicy, group: TargetGroup, found: Discovered): Target | DroppedTarget {
  const entry = config.discovery[group.source];
  const block = (entry?.[group.provider] ?? {}) as OverrideSettings;
  const fail = (reason: string, address?: string): DroppedTarget => droppedOf(group, found, reason, address);

  if (found.address === undefined) return fail(found.addressError ?? 'discovery found no address for it');
  const parsed = parseAddress(found.address);
  if (!parsed.ok) return fail(parsed.error, found.address);
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
    if (bad) return fail(bad, joinHostPort(draft.host, draft.port));
    if (configScheme === 'https' && draft.scheme === 'http') {
      downgrade = `${noun} pprof.scheme: "http" would turn this target's https (set by discovery[${group.source}].${group.provider}) into plain http: ${noun}s may choose https, never drop it; remove the ${noun}`;
    }
  }
  Object.assign(draft.labels, explicitLabels);

  // overrides: rules, in order; each sees what the ones before it set
  for (let i = 0; i < config.overrides.length; i++) {
    const rule = config.overrides[i];
    if (!rule || !matches(rule.match, draft, found, group)) continue;
    if (rule.drop) return fail(`dropped by overrides[${i}] (match ${describeMatch(rule.match)})`, joinHostPort(draft.host, draft.port));
    if (rule.scheme !== undefined) downgrade = undefined;
    applySettings(draft, rule, draft.labels);
  }

  const address = joinHostPort(draft.host, draft.port);
  if (downgrade !== undefined) return fail(downgrade, address);
  const refused = refusedAddress(draft.host, address, policy);
  if (refused !== undefined) return fail(refused, address);
  const service = draft.service ?? draft.host;
  const labels: Record<string, string> = { instance: address, provider: group.provider, ...draft.labels };

  const timing: Timing =
    draft.interval !== undefined || config.scrape.schedule === undefined
      ? { kind: 'interval', ms: draft.interval ?? config.scrape.interval }
      : { kind: 'cron', schedule: config.scrape.schedule, spreadMs: config.scrape.spread };

  const profiles: TargetProfile[] = [];
  for (const type of draft.profiles) {
    const def = config.profiles[type];
    if (!def) return fail(`profile type ${JSON.stringify(type)} is not defined under profiles:`, address);
    if (def.seconds !== undefined && timing.kind === 'interval' && def.seconds * 1000 >= timing.ms) {
      return fail(`interval ${formatDuration(timing.ms)} is not longer than profiles.${type}.seconds (${def.seconds}s)`, address);
    }
    const seconds = def.seconds ?? (type === CPU_TYPE ? defaultCpuSeconds(periodOf(timing, config.scrape.interval)) : type === TRACE_TYPE ? DEFAULT_TRACE_SECONDS : undefined);
    const path = def.path === DEFAULT_PATH_PREFIX || def.path.startsWith(`${DEFAULT_PATH_PREFIX}/`) ? draft.pathPrefix + def.path.slice(DEFAULT_PATH_PREFIX.length) : def.path;
    const url = `${draft.scheme}://${address}${path}${seconds !== undefined ? `?seconds=${seconds}` : ''}`;
    profiles.push({ type, url, seconds, delta: def.delta });
  }

  const notSentTo = refusingRepositories(config, service, labels);
  if (notSentTo.length > 0 && notSentTo.length === config.repositories.length) {
    return fail(`no repository can take its profiles: ${notSentTo.map((r) => `Pyroscope repository ${r.repository}: ${r.reason}`).join('; ')}`, address);
  }
  const id = targetId(draft.scheme, address, draft.pathPrefix, service, labels);
  return { id, provider: group.provider, source: group.source, service, address, scheme: draft.scheme, labels, timing, profiles, ...(notSentTo.length > 0 ? { notSentTo } : {}) };
}

/**
 * The repositories that can never take a target's profiles, whatever they
 * hold: a Pyroscope whose label limits the target's own labels exceed. Labels
 * on samples count there too, but are known only when a profile is sent, and
 * checked then.
 */
function refusingRepositories(config: Config, service: string, labels: Labels): NotSentTo[] {
  const out: NotSentTo[] = [];
  for (const entry of config.repositories) {
    const pyroscope = entry.pyroscope;
    if (!pyroscope) continue;
    const reason = targetLabelsProblem(service, labels, pyroscope.max_label_names_per_series);
    if (reason !== undefined) out.push({ repository: repositoryNameOf(entry), reason });
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

function applySettings(draft: Draft, s: OverrideSettings, labels: Record<string, string>): void {
  if (s.service !== undefined) draft.service = s.service;
  if (s.port !== undefined) draft.port = s.port;
  if (s.scheme !== undefined) draft.scheme = s.scheme;
  if (s.path !== undefined) draft.pathPrefix = s.path.replace(/\/+$/, '');
  if (s.profiles !== undefined) draft.profiles = [...s.profiles];
  if (s.interval !== undefined) draft.interval = s.interval;
  if (s.labels !== undefined) Object.assign(labels, s.labels);
}

/**
 * The address's host as the URL parser (and so the connection) reads it
 * (2852039166 and 0xa9fea9fe are 169.254.169.254 there), checked against
 * the deny and allow lists. Host names are checked when they resolve, at
 * connect time (see scrape/clients.ts).
 */
function refusedAddress(host: string, address: string, policy: AddressPolicy): string | undefined {
  let hostname: string;
  try {
    hostname = new URL(`http://${address}/`).hostname;
  } catch {
    return `host ${JSON.stringify(host)} is not a valid host name or IP address`;
  }
  const ip = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (isIP(ip) === 0) return undefined;
  const why = policy.refusal(ip);
  if (why === undefined) return undefined;
  const shown = isIP(host) !== 0 ? host : `${host} (${ip})`;
  return `address ${shown} ${why}`;
}

/** Applies `pprof.*` metadata; returns the reason to drop the target when a value is bad. */
function applyDirectives(draft: Draft, directives: Readonly<Record<string, string>>, labels: Record<string, string>, config: Config, noun: string, owned: ReadonlySet<string>): string | undefined {
  const bad = (key: string, value: string, why: string): string => `${noun} ${key}: ${JSON.stringify(value)} ${why}`;
  for (const [key, value] of Object.entries(directives)) {
    switch (key) {
      case 'pprof.port': {
        const p = parsePort(value);
        if (typeof p === 'string') return bad(key, value, /out of range/.test(p) ? 'is out of range 1..65535' : 'is not a port');
        draft.port = p;
        break;
      }
      case 'pprof.path': {
        const problem = pathProblem(value);
        if (problem !== undefined) return bad(key, value, problem);
        draft.pathPrefix = value.replace(/\/+$/, '');
        break;
      }
      case 'pprof.scheme':
        if (value !== 'http' && value !== 'https') return bad(key, value, 'is not http or https');
        draft.scheme = value;
        break;
      case 'pprof.service':
        if (value.trim() === '') return bad(key, value, 'is empty');
        draft.service = value;
        break;
      case 'pprof.profiles': {
        const types = value.split(',').map((t) => t.trim()).filter((t) => t !== '');
        const unknown = types.filter((t) => !config.profiles[t]);
        if (types.length === 0) return bad(key, value, 'names no profile type');
        if (unknown.length > 0) return bad(key, value, `names unknown profile type${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${Object.keys(config.profiles).join(', ')})`);
        draft.profiles = types;
        break;
      }
      case 'pprof.interval': {
        const ms = parseDuration(value.trim());
        if (ms === undefined || ms <= 0 || !Number.isSafeInteger(ms)) return bad(key, value, 'is not a duration (like 30s or 5m)');
        if (ms < MIN_INTERVAL_MS) return bad(key, value, `is below the ${formatDuration(MIN_INTERVAL_MS)} minimum interval`);
        draft.interval = ms;
        break;
      }
      default:
        if (key.startsWith('pprof.label.')) {
          const name = sanitizeLabelName(key.slice('pprof.label.'.length));
          if (name !== undefined && owned.has(name)) return bad(key, name, `is a label the daemon owns; tags and labels cannot set it (the config file can): remove the ${noun}`);
          if (name !== undefined) labels[name] = value;
        }
      // other pprof.* keys (pprof.scrape=true, used in filters) carry no setting
    }
  }
  return undefined;
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

function droppedOf(group: TargetGroup, found: Discovered, reason: string, address?: string): DroppedTarget {
  return {
    provider: group.provider,
    source: group.source,
    address: address ?? found.address,
    labels: { ...found.hidden, ...found.labels },
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
