/** Label names and values shipped with a profile. Names match [a-zA-Z_][a-zA-Z0-9_]*. */
export type Labels = Readonly<Record<string, string>>;

/**
 * A profile as it leaves the scraper: the bytes exactly as the target served
 * them (gzip-compressed pprof; a raw protobuf body is gzipped once so every
 * repository sees one format; the `trace` type's bytes are a Go execution
 * trace instead: see isTrace), with everything a repository needs to file it.
 * Plain data, so a durable queue can write it to disk and read it back.
 */
export interface ScrapedProfile {
  /** Stable id of the target it came from. */
  readonly targetId: string;
  readonly service: string;
  /** Profile type name as configured (cpu, heap, allocs, or a custom name). */
  readonly type: string;
  readonly labels: Labels;
  /** When the profile was taken, ms since the epoch: see profileTime. */
  readonly time: number;
  /**
   * The profile's own time_nanos in ms, when positive: equal to `time`, or
   * the far-off time that `time` replaced. profefe files a profile under it.
   */
  readonly bodyTime?: number;
  /** The profile's DurationNanos in ms, when it has one (CPU-style types). */
  readonly durationMs?: number;
  /**
   * Number of Sample messages in the profile; 0 means an empty profile. A
   * trace has no samples and counts 0 without being empty: test isTrace first.
   */
  readonly sampleCount: number;
  /** The URL it was scraped from (no credentials in it). */
  readonly url: string;
  /** The endpoint serves deltas already (a `delta: true` type, godeltaprof): repositories that want deltas send it as it is. */
  readonly delta?: boolean;
  /** Every profile type its target is configured with: lets a repository that files two types as one series pick one, the same for every scrape. */
  readonly targetTypes?: readonly string[];
  /** Those of its target's types that serve deltas already (`delta: true`, godeltaprof), each with the path it is taken from: tells a godeltaprof heap, block or mutex apart. */
  readonly targetDeltaTypes?: Readonly<Record<string, string>>;
  /** gzip-compressed pprof protobuf; for a trace, the trace as Go wrote it (not compressed). */
  readonly data: Buffer;
}

/** How far a profile's own time may lie from its scrape before the scrape time is used instead. */
export const MAX_PROFILE_TIME_SKEW_MS = 10 * 60_000;

/**
 * The time a profile is filed under (file names, object keys, profefe's
 * created_at): its own time_nanos when it lies within 10 minutes of the
 * scrape start, else the scrape start. A target's clock, or a body that says
 * the year 39381 or 1970, must not file profiles there.
 */
export function profileTime(ownMs: number | undefined, scrapedAtMs: number): { readonly time: number; readonly ignored?: number } {
  if (ownMs === undefined) return { time: scrapedAtMs };
  return Math.abs(ownMs - scrapedAtMs) <= MAX_PROFILE_TIME_SKEW_MS ? { time: ownMs } : { time: scrapedAtMs, ignored: ownMs };
}

/** The type whose bytes are a Go execution trace (/debug/pprof/trace), not pprof. */
export const TRACE_TYPE = 'trace';

/**
 * Whether a profile is a Go execution trace, by its type name: its `data` is
 * the trace as Go wrote it, with no time or samples inside, and its
 * `sampleCount` of 0 does not mean empty.
 */
export function isTrace(profile: { readonly type: string }): boolean {
  return profile.type === TRACE_TYPE;
}

/** How a file or object holding a profile's bytes ends: `.trace` for a Go execution trace, else `.pb.gz`. */
export function fileExtensionOf(profile: { readonly type: string }): '.trace' | '.pb.gz' {
  return isTrace(profile) ? '.trace' : '.pb.gz';
}
