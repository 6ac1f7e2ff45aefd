/** Label names and values shipped with a profile. Names match [a-zA-Z_][a-zA-Z0-9_]*. */
export type Labels = Readonly<Record<string, string>>;

/**
 * A profile as it leaves the scraper: the bytes exactly as the target served
 * them (gzip-compressed pprof; a raw protobuf body is gzipped once so every
 * repository sees one format), with everything a repository needs to file it.
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
  /** The profile's DurationNanos in ms, when it has one (CPU-style types). */
  readonly durationMs?: number;
  /** Number of Sample messages in the profile; 0 means an empty profile. */
  readonly sampleCount: number;
  /** The URL it was scraped from (no credentials in it). */
  readonly url: string;
  /** The endpoint serves deltas already (a `delta: true` type, godeltaprof): repositories that want deltas send it as it is. */
  readonly delta?: boolean;
  /** Every profile type its target is configured with: lets a repository that files two types as one series pick one, the same for every scrape. */
  readonly targetTypes?: readonly string[];
  /** gzip-compressed pprof protobuf. */
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
