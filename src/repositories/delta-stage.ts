import type { Metrics } from '../metrics.js';
import type { DeltaResult } from '../profiles/delta.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { Prepared } from './repository.js';

/**
 * What a repository that is sent deltas (Pyroscope, OTLP) does with the
 * delta stage's answer for one profile: send it as it is, skip it as the
 * series' new baseline (counted by reason), skip an empty delta, or send the
 * delta in its place.
 */
export function preparedOfDelta(result: DeltaResult, profile: ScrapedProfile, repository: string, metrics: Metrics | undefined): Prepared {
  switch (result.kind) {
    case 'as-is':
      return { status: 'send', profile };
    case 'baseline':
      metrics?.deltaResets.inc({ repository, reason: result.reason });
      return {
        status: 'skipped',
        reason: result.reason === 'first' ? 'first profile of this target and type: it only sets the baseline for deltas' : 'counters went down (the target restarted): this profile is the new baseline',
      };
    case 'delta':
      if (result.sampleCount === 0) return { status: 'skipped', reason: 'nothing changed since the previous scrape' };
      return { status: 'send', profile: { ...profile, data: result.data, time: result.timeMs, durationMs: result.durationMs, sampleCount: result.sampleCount } };
  }
}
