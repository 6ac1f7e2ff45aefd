import { targetsReport } from '../targets/index.js';
import type { BuildResult, TargetStatus } from '../targets/index.js';
import type { DeliveryStatus } from '../delivery/index.js';
import { stalledFor } from './health.js';
import { lastProfileLink } from './routes.js';
import type { LastScrapeJson, RepositoryStatusJson, StatusReport } from './routes.js';

/**
 * /targets: what the dry run would print of the targets running now, and
 * the last scrape of each target × type, with a link to its profile while
 * that is still held.
 */
export function statusReport(current: BuildResult, problems: readonly { provider: string; source: number; error: string }[], status: TargetStatus): StatusReport {
  const base = targetsReport(current, problems);
  return {
    ...base,
    targets: base.targets.map((t) => {
      const last: Record<string, LastScrapeJson> = {};
      for (const p of t.profiles) {
        const l = status.lastScrape(t.id, p.type);
        if (l) last[p.type] = status.holdsProfile(t.id, p.type) ? { ...l, profile: lastProfileLink(t.id, p.type) } : l;
      }
      return { ...t, last };
    }),
  };
}

/** A repository's delivery as /status and the status page show it. */
export function repositoryStatusJson(r: DeliveryStatus, deliveryStallMs: number, now: number): RepositoryStatusJson {
  return {
    name: r.name,
    kind: r.kind,
    queued: r.queued,
    queuedBytes: r.queuedBytes,
    oldestAgeMs: r.oldestAgeMs,
    ...(r.lastSuccessAt !== undefined ? { lastSuccess: new Date(r.lastSuccessAt).toISOString() } : {}),
    ...(r.lastError ? { lastError: { time: new Date(r.lastError.at).toISOString(), error: r.lastError.error, permanent: r.lastError.permanent } } : {}),
    failedAttempts: r.failedAttempts,
    ...(r.retryAt !== undefined ? { retryAt: new Date(r.retryAt).toISOString() } : {}),
    stalled: stalledFor(r, deliveryStallMs, now) !== undefined,
  };
}
