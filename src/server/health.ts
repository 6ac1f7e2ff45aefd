import { formatDuration } from '../config/index.js';
import type { DeliveryStatus } from '../delivery/index.js';

/** When /-/healthy turns unhealthy (server.health), in ms. */
export interface HealthThresholds {
  readonly deliveryStallMs: number;
  readonly discoveryFailureMs: number;
}

/** What /-/healthy judges by. */
export interface HealthInput {
  readonly thresholds: HealthThresholds;
  readonly repositories: readonly DeliveryStatus[];
  /** Since when every discovery provider has failed; undefined when one answers. */
  readonly discoveryFailingSince: number | undefined;
  /** The providers' current errors, named in the reason. */
  readonly discoveryErrors: readonly { provider: string; source: number; error: string }[];
  readonly now: number;
}

export interface Health {
  readonly healthy: boolean;
  /** One line each, saying what, since when and what to look at. */
  readonly reasons: string[];
}

/** Long error texts (a repository's answer) stay readable in one line of the body. */
const ERROR_CHARS = 300;

/**
 * Whether a repository is stalled: it has profiles queued, the oldest has
 * waited longer than the threshold, and it has taken none for as long
 * (counted from this run's start when it has taken none yet, so a backlog
 * found on disk is not judged before it was tried). A repository that
 * takes every profile is never stalled, however slow its scrapes' interval.
 */
export function stalledFor(r: DeliveryStatus, thresholdMs: number, now: number): number | undefined {
  if (r.queued === 0 || r.oldestAgeMs < thresholdMs) return undefined;
  const quiet = now - Math.max(r.lastSuccessAt ?? 0, r.since);
  return quiet >= thresholdMs ? quiet : undefined;
}

/**
 * The judgement of /-/healthy: unhealthy while a repository is stalled
 * (server.health.delivery_stall) or every discovery provider has failed
 * for server.health.discovery_failure. A restart fixes neither, but an
 * operator's alert on the probe should wake someone.
 */
export function judgeHealth(input: HealthInput): Health {
  const { thresholds, now } = input;
  const reasons: string[] = [];
  for (const r of input.repositories) {
    const quiet = stalledFor(r, thresholds.deliveryStallMs, now);
    if (quiet === undefined) continue;
    const last = r.lastError ? `; last error ${formatDuration(roundS(now - r.lastError.at))} ago: ${r.lastError.error.slice(0, ERROR_CHARS)}` : '';
    reasons.push(
      `repository ${r.name} (${r.kind}): ${r.queued} profiles queued, the oldest for ${formatDuration(roundS(r.oldestAgeMs))}, and none taken for ${formatDuration(roundS(quiet))} ` +
        `(server.health.delivery_stall ${formatDuration(thresholds.deliveryStallMs)})${last}; check that the repository is up and reachable`,
    );
  }
  const since = input.discoveryFailingSince;
  if (since !== undefined && now - since >= thresholds.discoveryFailureMs) {
    const errors = input.discoveryErrors.map((e) => `discovery[${e.source}] (${e.provider}): ${e.error.slice(0, ERROR_CHARS)}`).join('; ');
    reasons.push(
      `every discovery provider has failed for ${formatDuration(roundS(now - since))} (server.health.discovery_failure ${formatDuration(thresholds.discoveryFailureMs)}); ` +
        `the last good targets are still scraped: ${errors}`,
    );
  }
  return { healthy: reasons.length === 0, reasons };
}

function roundS(ms: number): number {
  return Math.max(0, Math.round(ms / 1000) * 1000);
}
