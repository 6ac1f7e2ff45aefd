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
  /** When the profile was taken, ms since the epoch: the profile's TimeNanos, else the scrape start. */
  readonly time: number;
  /** The profile's DurationNanos in ms, when it has one (CPU-style types). */
  readonly durationMs?: number;
  /** Number of Sample messages in the profile; 0 means an empty profile. */
  readonly sampleCount: number;
  /** The URL it was scraped from (no credentials in it). */
  readonly url: string;
  /** The endpoint serves deltas already (a `delta: true` type, godeltaprof): repositories that want deltas send it as it is. */
  readonly delta?: boolean;
  /** gzip-compressed pprof protobuf. */
  readonly data: Buffer;
}
