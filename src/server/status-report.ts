import { targetsReport } from '../targets/index.js';
import type { BuildResult, TargetStatus } from '../targets/index.js';
import { lastProfileLink } from './routes.js';
import type { LastScrapeJson, StatusReport } from './routes.js';

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
