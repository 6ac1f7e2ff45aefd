import type { Config } from '../config/index.js';
import type { RelabelRule } from '../config/relabel.js';
import { LABEL_NAME_RE } from '../config/target-settings.js';
import type { Labels } from '../profiles/profile.js';
import { joinHostPort, parseAddress } from './address.js';
import type { Draft } from './draft.js';
import { metaLabelsOf } from './meta.js';
import { pathProblem } from './path.js';
import { relabel } from './relabel.js';
import type { TargetGroup, Discovered } from './types.js';

export const ADDRESS_LABEL = '__address__';
export const SCHEME_LABEL = '__scheme__';
export const METRICS_PATH_LABEL = '__metrics_path__';
export const SERVICE_LABEL = '__service__';

/** The rules of a discovery entry, its block's first, then the top-level ones, each with the name reasons give it. */
export interface EntryRules {
  readonly rules: readonly RelabelRule[];
  readonly names: readonly string[];
}

const rulesCache = new WeakMap<Config, Map<number, EntryRules>>();

export function rulesOf(config: Config, group: TargetGroup, block: { relabel_configs?: readonly RelabelRule[] | undefined }): EntryRules {
  let perConfig = rulesCache.get(config);
  if (!perConfig) rulesCache.set(config, (perConfig = new Map<number, EntryRules>()));
  let entry = perConfig.get(group.source);
  if (!entry) {
    const own = block.relabel_configs ?? [];
    entry = {
      rules: [...own, ...config.relabel_configs],
      names: [...own.map((_, i) => `discovery[${group.source}].${group.provider}.relabel_configs[${i}]`), ...config.relabel_configs.map((_, i) => `relabel_configs[${i}]`)],
    };
    perConfig.set(group.source, entry);
  }
  return entry;
}

export type RelabelOutcome = { readonly ok: true; readonly discovered: Labels; readonly schemeSet: boolean } | { readonly ok: false; readonly discovered: Labels; readonly reason: string };

/**
 * Runs the rules over the target as built so far, in Prometheus's terms: its
 * labels, its provider's `__meta_*` metadata, `__address__` (host:port),
 * `__scheme__`, `__metrics_path__` (the pprof path prefix) and, when one is
 * set, `__service__`. What the rules leave becomes the draft: the address,
 * scheme, path and service they set, and the labels not starting with `__`.
 * The checks after (overrides:, deny_cidrs, the interval floor) still apply.
 */
export function relabelDraft(draft: Draft, found: Discovered, group: TargetGroup, rules: EntryRules): RelabelOutcome {
  const input: Record<string, string> = { ...metaLabelsOf(group.provider, found), ...draft.labels };
  input[ADDRESS_LABEL] = joinHostPort(draft.host, draft.port);
  input[SCHEME_LABEL] = draft.scheme;
  input[METRICS_PATH_LABEL] = draft.pathPrefix;
  if (draft.service !== undefined) input[SERVICE_LABEL] = draft.service;
  for (const [k, v] of Object.entries(input)) if (v === '') delete input[k];
  const result = relabel(input, rules.rules);
  const fail = (reason: string): RelabelOutcome => ({ ok: false, discovered: input, reason });
  if (!result.keep) return fail(`dropped by ${rules.names[result.rule] ?? 'relabel_configs'}`);
  const out = result.labels;

  const address = out[ADDRESS_LABEL];
  if (address === undefined) return fail('relabel_configs left no __address__');
  if (address !== input[ADDRESS_LABEL]) {
    const parsed = parseAddress(address);
    if (!parsed.ok) return fail(`relabel_configs set __address__ to ${JSON.stringify(address)}: ${parsed.error}`);
    draft.host = parsed.value.host;
    if (parsed.value.port !== undefined) draft.port = parsed.value.port;
    if (parsed.value.scheme !== undefined) draft.scheme = parsed.value.scheme;
    if (parsed.value.pathPrefix !== undefined) draft.pathPrefix = parsed.value.pathPrefix;
  }
  const scheme = out[SCHEME_LABEL];
  const schemeSet = scheme !== input[SCHEME_LABEL];
  if (schemeSet) {
    if (scheme !== 'http' && scheme !== 'https') return fail(`relabel_configs set __scheme__ to ${JSON.stringify(scheme ?? '')}: use http or https`);
    draft.scheme = scheme;
  }
  const path = out[METRICS_PATH_LABEL];
  if (path !== input[METRICS_PATH_LABEL]) {
    const problem = path === undefined ? 'is empty' : pathProblem(path);
    if (problem !== undefined) return fail(`relabel_configs set __metrics_path__ to ${JSON.stringify(path ?? '')}, which ${problem}`);
    draft.pathPrefix = (path ?? '').replace(/\/+$/, '');
  }
  const service = out[SERVICE_LABEL];
  if (service !== undefined && service.trim() !== '' && service !== input[SERVICE_LABEL]) draft.service = service;

  // labels starting with __ are for the rules only, as in Prometheus
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(out)) {
    if (k.startsWith('__')) continue;
    if (!LABEL_NAME_RE.test(k)) return fail(`relabel_configs made the label name ${JSON.stringify(k)}, which is not valid (letters, digits and _, not first)`);
    labels[k] = v;
  }
  draft.labels = labels;
  return { ok: true, discovered: input, schemeSet };
}
