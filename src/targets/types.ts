import type { OverrideSettings, ProviderKind } from '../config/index.js';
import type { Labels } from '../profiles/profile.js';

/**
 * One thing a provider found, as metadata only. The target builder decides
 * what it means: which port, which service, which labels.
 */
export interface Discovered {
  /** `host`, `host:port`, `[v6]:port` or an http(s) URL, as found. Absent when discovery found no usable address. */
  readonly address?: string | undefined;
  /** Why there is no address (an instance without a public IP), shown as the drop reason. */
  readonly addressError?: string | undefined;
  /** Metadata shipped as labels: instance_id, container_name, ... (valid label names). */
  readonly labels: Labels;
  /** Metadata for overrides: matching only, never shipped: tag_<name>, label_<name>. */
  readonly hidden?: Labels | undefined;
  /** `pprof.*` keys from instance tags or container labels. */
  readonly directives?: Readonly<Record<string, string>> | undefined;
  /** A static entry's own fields. */
  readonly settings?: OverrideSettings | undefined;
  /** Service name from the metadata (EC2 Name tag, compose service): above the provider block's `service`. */
  readonly service?: string | undefined;
  /** Service name to use when nothing else names one (instance id, container name). */
  readonly fallbackService?: string | undefined;
  /** `__meta_*` labels for relabel_configs, as Prometheus names this provider's metadata (file, http, dns; ec2 and docker derive theirs, targets/meta.ts). */
  readonly meta?: Labels | undefined;
}

/** Everything one provider entry currently knows. */
export interface TargetGroup {
  /** Index in config.discovery: its block settings and client settings apply. */
  readonly source: number;
  readonly provider: ProviderKind;
  /** How reasons name a directive's origin: "tag" (EC2) or "label" (Docker). */
  readonly directiveNoun?: string | undefined;
  readonly targets: readonly Discovered[];
}

/** One profile type of a target: the URL it is taken from. */
export interface TargetProfile {
  readonly type: string;
  readonly url: string;
  /** CPU-style: the ?seconds=N the request carries. */
  readonly seconds?: number | undefined;
  /** The endpoint already serves deltas (godeltaprof). */
  readonly delta: boolean;
}

export type Timing = { readonly kind: 'interval'; readonly ms: number } | { readonly kind: 'cron'; readonly schedule: string; readonly spreadMs: number };

/** A target, ready to schedule: where, what, how often, with which labels. */
export interface Target {
  /** Stable: hash of scheme, address, path prefix, service and labels. */
  readonly id: string;
  readonly provider: ProviderKind;
  /** Index in config.discovery (its TLS and credentials apply). */
  readonly source: number;
  readonly service: string;
  /** `host:port` */
  readonly address: string;
  readonly scheme: 'http' | 'https';
  readonly labels: Labels;
  /** The labels relabel_configs started from (`__meta_*`, `__address__`, …); set only when rules ran. */
  readonly discoveredLabels?: Labels | undefined;
  readonly timing: Timing;
  readonly profiles: readonly TargetProfile[];
  /** Repositories that never get this target's profiles, and why; set only when some do. */
  readonly notSentTo?: readonly NotSentTo[] | undefined;
}

/** A repository that can never take a target's profiles (a Pyroscope whose label limits its labels exceed), and why. */
export interface NotSentTo {
  readonly repository: string;
  readonly reason: string;
}

/**
 * Why a target was dropped, for code to tell apart (the reason is for people):
 * discovery gave no address, or one that does not parse; its `pprof.*` tags or
 * labels are bad; relabel_configs drop it (or leave it without a usable
 * address, scheme, path or label name); an `overrides:` rule drops it; `scrape.deny_cidrs` or
 * `allow_cidrs` refuse its address; its settings do not fit together (an
 * unknown profile type, an interval not longer than a profile's seconds); no
 * repository can take its profiles; another target has its id; it belongs to
 * another shard.
 */
export type DropKind = 'no_address' | 'invalid_address' | 'invalid_metadata' | 'relabel' | 'override' | 'address_policy' | 'invalid_settings' | 'no_repository' | 'duplicate' | 'shard';

/** A target discovery found but that will not be scraped, and why. */
export interface DroppedTarget {
  readonly provider: ProviderKind;
  readonly source: number;
  readonly address?: string | undefined;
  readonly labels: Labels;
  readonly kind: DropKind;
  readonly reason: string;
}

export interface BuildResult {
  readonly targets: Target[];
  readonly dropped: DroppedTarget[];
}
