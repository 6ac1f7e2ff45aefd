import { DEFAULT_PROFILE_LIMITS } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import type { Metrics } from '../metrics.js';
import { DeltaStore } from '../profiles/delta.js';
import type { DeltaResult, Deltas } from '../profiles/delta.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { Prepared, Repository } from './repository.js';

/** How long a series may go without a profile (its target gone) before its delta baseline goes, beyond the queue's max_age. */
const BASELINE_IDLE_MS = 3_600_000;

/** What a repository that is sent deltas (Pyroscope, OTLP) is given besides its config. */
export interface DeltaRepositoryDeps {
  readonly metrics?: Metrics | undefined;
  /** The repository this one replaces on a reload: its delta baselines carry over. */
  readonly previous?: Repository | undefined;
  /** Where the delta baselines are kept (state_dir/baselines/<name>/ in the daemon); without it, in memory. */
  readonly deltaBaselines?: ((options: { readonly idleMs: number }) => Deltas) | undefined;
  /** The structure limits in force; queued profiles are decoded under them too. */
  readonly profileLimits?: (() => ProfileLimits) | undefined;
}

/** A repository's delta stage: its baselines, and the delta of one profile as the repository's prepare() answers it. */
export interface DeltaStage {
  readonly deltas: Deltas;
  prepare(profile: ScrapedProfile, now?: number): Promise<Prepared>;
}

/**
 * The delta stage of repository `name`: the baselines of the repository it
 * replaces on a reload, else new ones (kept beyond whatever the queue may
 * still hold for a series: `queueMaxAgeMs`), with their gauges and
 * evictions counted after each profile.
 */
export function deltaStage(name: string, queueMaxAgeMs: number, deps: DeltaRepositoryDeps): DeltaStage {
  const { metrics } = deps;
  const previous = deps.previous as { deltas?: unknown } | undefined;
  const deltas = isDeltas(previous?.deltas) ? previous.deltas : (deps.deltaBaselines?.({ idleMs: queueMaxAgeMs + BASELINE_IDLE_MS }) ?? new DeltaStore());
  let evictionsCounted = deltas.evictions;
  // present from the start, so a dashboard (and the benchmark) reads 0, not nothing
  metrics?.deltaEvictions.inc({ repository: name }, 0);
  const gauge = (): void => {
    metrics?.deltaBaselines.set({ repository: name }, deltas.size);
    metrics?.deltaBaselineBytes.set({ repository: name }, deltas.bytes);
    if (deltas.evictions > evictionsCounted) metrics?.deltaEvictions.inc({ repository: name }, deltas.evictions - evictionsCounted);
    evictionsCounted = deltas.evictions;
  };
  return {
    deltas,
    async prepare(profile, now = Date.now()) {
      let result;
      try {
        // A profile that does not decode within the limits throws (a ProfileError): sent as
        // scraped it would reach the repository as cumulative totals marked as deltas, or as a bomb.
        result = await deltas.compute(`${profile.targetId}\0${profile.type}`, profile.data, profile.time, now, deps.profileLimits?.() ?? DEFAULT_PROFILE_LIMITS);
      } finally {
        gauge();
      }
      return preparedOfDelta(result, profile, name, metrics);
    },
  };
}

function isDeltas(value: unknown): value is Deltas {
  return typeof value === 'object' && value !== null && typeof (value as Partial<Deltas>).compute === 'function';
}

/**
 * What a repository that is sent deltas does with the delta stage's answer
 * for one profile: send it as it is, skip it as the series' new baseline
 * (counted by reason), skip an empty delta, or send the delta in its place.
 */
function preparedOfDelta(result: DeltaResult, profile: ScrapedProfile, repository: string, metrics: Metrics | undefined): Prepared {
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
