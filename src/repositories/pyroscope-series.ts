import { formatDuration } from '../config/index.js';
import type { ScrapedProfile } from '../profiles/profile.js';

// Which Pyroscope series a profile is filed under (its `__name__`), which of a
// target's types feeds a series that two of them could, and Pyroscope's
// ingestion window.

/** Pyroscope's names for Go's profile types, as Alloy's pyroscope.scrape files them. */
export const GO_PROFILE_NAMES: Readonly<Record<string, string>> = {
  cpu: 'process_cpu',
  heap: 'memory',
  allocs: 'memory',
  block: 'block',
  mutex: 'mutex',
  goroutine: 'goroutine',
  threadcreate: 'threadcreate',
};

/**
 * Pyroscope's profile name for one of our types: Pyroscope's name for Go's own
 * types, else the configured name. A `delta: true` type serving Go's heap,
 * block or mutex samples (godeltaprof) is filed as memory, block or mutex, as
 * Alloy files godeltaprof_memory, godeltaprof_block and godeltaprof_mutex.
 */
export function profileNameOf(type: string, sampleTypes: readonly string[], delta = false, url = ''): string {
  const go = GO_PROFILE_NAMES[type];
  if (go !== undefined) return go;
  if (delta) {
    if (sampleTypes.some((t) => t.startsWith('alloc_') || t.startsWith('inuse_'))) return 'memory';
    if (sampleTypes.includes('contentions') && sampleTypes.includes('delay')) return /mutex/i.test(type) || /mutex/i.test(url) ? 'mutex' : 'block';
  }
  return type;
}

/** The series a godeltaprof type feeds, told by its name or path (delta_heap, /debug/pprof/delta_mutex). */
function godeltaprofSeries(type: string, path: string): string | undefined {
  const text = `${type} ${path}`;
  if (/mutex/i.test(text)) return 'mutex';
  if (/block/i.test(text)) return 'block';
  if (/heap|alloc|mem/i.test(text)) return 'memory';
  return undefined;
}

/**
 * Which of its target's types Pyroscope's `series` (memory, block or mutex)
 * comes from: two types filed under one name would count the same events
 * twice. A godeltaprof type (`delta: true`, named or served as heap, block or
 * mutex) first, as Alloy prefers godeltaprof; for memory then heap, then
 * allocs (the same alloc_* samples); for block and mutex Go's own type.
 * Decided by the target's configured types, so every scrape of a target
 * decides alike. Undefined when nothing decides: a profile queued without
 * its target's types (by an older version) is sent.
 */
export function seriesSourceOf(series: string, profile: ScrapedProfile): string | undefined {
  const types: unknown = profile.targetTypes;
  if (!Array.isArray(types)) return undefined;
  const deltas: unknown = profile.targetDeltaTypes;
  if (typeof deltas === 'object' && deltas !== null) {
    for (const type of types) {
      const path = (deltas as Record<string, unknown>)[String(type)];
      if (typeof type === 'string' && typeof path === 'string' && godeltaprofSeries(type, path) === series) return type;
    }
  }
  if (series === 'memory') return types.includes('heap') ? 'heap' : types.includes('allocs') ? 'allocs' : undefined;
  if (series === 'block' || series === 'mutex') return types.includes(series) ? series : undefined;
  return undefined;
}

/** Why a profile filed as `series` is not sent when the target's `source` type feeds that series; undefined when it is the source (or nothing decides). */
export function notTheSource(series: string, profile: ScrapedProfile): string | undefined {
  const source = seriesSourceOf(series, profile);
  if (source === undefined || source === profile.type) return undefined;
  return `${profile.type} holds the same samples as this target's ${source} profile, which Pyroscope gets (both are "${series}")`;
}

/**
 * Why a profile dated `timeMs` lies outside Pyroscope's ingestion window at
 * `now`, or undefined when inside. Pyroscope takes a time after now minus
 * reject_older_than and before now plus reject_newer_than (either 0: no bound).
 */
export function outsideIngestionWindow(timeMs: number, now: number, olderThanMs: number, newerThanMs: number): string | undefined {
  if (olderThanMs > 0 && !(timeMs > now - olderThanMs)) return `taken ${formatDuration(now - timeMs)} ago, and Pyroscope refuses profiles older than reject_older_than (${formatDuration(olderThanMs)})`;
  if (newerThanMs > 0 && !(timeMs < now + newerThanMs)) return `dated ${formatDuration(timeMs - now)} ahead, and Pyroscope refuses profiles further ahead than reject_newer_than (${formatDuration(newerThanMs)})`;
  return undefined;
}
