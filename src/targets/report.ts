import { describeTiming } from './builder.js';
import type { BuildResult, DroppedTarget, Target } from './types.js';

/** A target as `targets --output json` and `/targets` show it. */
export interface TargetJson {
  id: string;
  provider: string;
  service: string;
  address: string;
  scheme: string;
  labels: Record<string, string>;
  /** The labels relabel_configs started from, when rules ran: before and after, as Prometheus's targets page shows them. */
  discovered_labels?: Record<string, string>;
  interval?: string;
  schedule?: string;
  spread?: string;
  profiles: { type: string; url: string }[];
  /** Repositories that never get this target's profiles, and why. */
  not_sent_to?: { repository: string; reason: string }[];
}

export interface DroppedJson {
  provider: string;
  address?: string;
  labels: Record<string, string>;
  reason: string;
}

export interface ErrorJson {
  provider: string;
  source: string;
  error: string;
}

export interface TargetsReport {
  targets: TargetJson[];
  dropped: DroppedJson[];
  errors: ErrorJson[];
}

export function targetJson(t: Target): TargetJson {
  return {
    id: t.id,
    provider: t.provider,
    service: t.service,
    address: t.address,
    scheme: t.scheme,
    labels: { ...t.labels },
    ...(t.discoveredLabels !== undefined ? { discovered_labels: { ...t.discoveredLabels } } : {}),
    ...describeTiming(t.timing),
    profiles: t.profiles.map((p) => ({ type: p.type, url: p.url })),
    ...(t.notSentTo ? { not_sent_to: t.notSentTo.map((n) => ({ repository: n.repository, reason: n.reason })) } : {}),
  };
}

export function droppedJson(d: DroppedTarget): DroppedJson {
  return { provider: d.provider, ...(d.address !== undefined ? { address: d.address } : {}), labels: { ...d.labels }, reason: d.reason };
}

export function targetsReport(result: BuildResult, problems: readonly ProviderProblem[]): TargetsReport {
  return {
    targets: result.targets.map(targetJson),
    dropped: result.dropped.map(droppedJson),
    errors: problems.map(errorJson),
  };
}

/** What a provider's failed refresh says, as the dry run and /targets show it. */
export interface ProviderProblem {
  readonly provider: string;
  readonly source: number;
  readonly error: string;
}

export function errorJson(p: ProviderProblem): ErrorJson {
  return { provider: p.provider, source: `discovery[${p.source}]`, error: p.error };
}
