import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfo } from './build-info.js';

/** One series of pprof_scraper_target_up. */
export interface TargetUpSeries {
  readonly service: string;
  readonly instance: string;
  readonly type: string;
  readonly up: number;
}

/**
 * The daemon's own metrics (`pprof_scraper_*`), and prom-client's process and
 * Node metrics under their usual names. One registry per daemon, so tests can
 * run several side by side.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const reg = [registry];
  const queueSources = new Map<string, () => { length: number; bytes: number; oldestAgeMs: number }>();
  const targetUpSource: { series: () => Iterable<TargetUpSeries>; unexposed: () => number } = { series: () => [], unexposed: () => 0 };
  return {
    registry,
    scrapes: new Counter({
      name: 'pprof_scraper_scrapes_total',
      help: 'Scrapes by provider, profile type and result (success, or why it failed).',
      labelNames: ['provider', 'type', 'result'] as const,
      registers: reg,
    }),
    scrapeDuration: new Histogram({
      name: 'pprof_scraper_scrape_duration_seconds',
      help: 'Time from request to a checked profile, by profile type.',
      labelNames: ['type'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: reg,
    }),
    scrapedBytes: new Counter({
      name: 'pprof_scraper_scraped_bytes_total',
      help: 'Bytes of profile bodies received, by profile type.',
      labelNames: ['type'] as const,
      registers: reg,
    }),
    skippedTicks: new Counter({
      name: 'pprof_scraper_skipped_ticks_total',
      help: 'Ticks skipped because the previous scrape of the same target and type still ran.',
      labelNames: ['type'] as const,
      registers: reg,
    }),
    // a histogram, not a summary: buckets add up across shards, quantiles do not
    lateness: new Histogram({
      name: 'pprof_scraper_schedule_lateness_seconds',
      help: 'How long after its planned time a scrape got its concurrency slot.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: reg,
    }),
    targets: new Gauge({
      name: 'pprof_scraper_targets',
      help: 'Targets being scraped, by provider.',
      labelNames: ['provider'] as const,
      registers: reg,
    }),
    /** The target_up series and how many the limit left out: the two gauges read them when /metrics is scraped. */
    targetUpSource,
    targetUp: new Gauge({
      name: 'pprof_scraper_target_up',
      help: 'Whether the last scrape of a target\'s profile type succeeded (1) or failed (0); no series before its first scrape. At most server.target_up_limit series.',
      labelNames: ['service', 'instance', 'type'] as const,
      registers: reg,
      collect() {
        this.reset();
        // two targets with one service and address share a series: a failing one wins
        for (const s of targetUpSource.series()) if (s.up === 1) this.set({ service: s.service, instance: s.instance, type: s.type }, 1);
        for (const s of targetUpSource.series()) if (s.up !== 1) this.set({ service: s.service, instance: s.instance, type: s.type }, 0);
      },
    }),
    targetUpUnexposed: new Gauge({
      name: 'pprof_scraper_target_up_unexposed',
      help: 'Target × profile types that have no pprof_scraper_target_up series because server.target_up_limit was reached.',
      registers: reg,
      collect() {
        this.set(targetUpSource.unexposed());
      },
    }),
    droppedTargets: new Gauge({
      name: 'pprof_scraper_dropped_targets',
      help: 'Targets discovery found that are not scraped (bad override value, drop rule, other shard), by provider.',
      labelNames: ['provider'] as const,
      registers: reg,
    }),
    discoveryRefreshes: new Counter({
      name: 'pprof_scraper_discovery_refreshes_total',
      help: 'Discovery refreshes by provider entry and result.',
      labelNames: ['provider', 'source', 'result'] as const,
      registers: reg,
    }),
    discoveryFailures: new Counter({
      name: 'pprof_scraper_discovery_failures_total',
      help: 'Discovery refreshes that failed (the last good targets stay), by provider entry.',
      labelNames: ['provider', 'source'] as const,
      registers: reg,
    }),
    profilesSent: new Counter({
      name: 'pprof_scraper_profiles_sent_total',
      help: 'Profiles handed to a repository, by repository and result (ok, skipped, permanent, dropped).',
      labelNames: ['repository', 'result'] as const,
      registers: reg,
    }),
    sendRetries: new Counter({
      name: 'pprof_scraper_send_retries_total',
      help: 'Send attempts that failed with a retryable error and will be tried again.',
      labelNames: ['repository'] as const,
      registers: reg,
    }),
    queueDropped: new Counter({
      name: 'pprof_scraper_queue_dropped_total',
      help: 'Profiles dropped from a repository queue, by reason.',
      labelNames: ['repository', 'reason'] as const,
      registers: reg,
    }),
    queueQuarantined: new Counter({
      name: 'pprof_scraper_queue_quarantined_total',
      help: 'Queued items moved to the queue\'s quarantine/ folder instead of being sent, by repository and reason (damaged: unreadable bytes; prepare: the repository could not prepare it; interrupted: the daemon stopped while preparing it).',
      labelNames: ['repository', 'reason'] as const,
      registers: reg,
    }),
    queueLength: new Gauge({
      name: 'pprof_scraper_queue_length',
      help: 'Profiles waiting for a repository.',
      labelNames: ['repository'] as const,
      registers: reg,
      collect() {
        for (const [repository, stats] of queueSources) this.set({ repository }, stats().length);
      },
    }),
    queueBytes: new Gauge({
      name: 'pprof_scraper_queue_bytes',
      help: 'Bytes of profiles waiting for a repository.',
      labelNames: ['repository'] as const,
      registers: reg,
      collect() {
        for (const [repository, stats] of queueSources) this.set({ repository }, stats().bytes);
      },
    }),
    /** Durable queues by repository: the three queue gauges read them when /metrics is scraped. */
    queueSources,
    queueOldestAge: new Gauge({
      name: 'pprof_scraper_queue_oldest_age_seconds',
      help: 'Age of the oldest profile waiting for a repository (0 when none waits).',
      labelNames: ['repository'] as const,
      registers: reg,
      collect() {
        this.reset();
        for (const [repository, stats] of queueSources) this.set({ repository }, stats().oldestAgeMs / 1000);
      },
    }),
    spoolCommits: new Histogram({
      name: 'pprof_scraper_spool_commit_seconds',
      help: 'Time to make a group of scraped profiles durable in the state_dir (write and fdatasync).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: reg,
    }),
    spoolWriteErrors: new Counter({
      name: 'pprof_scraper_spool_write_errors_total',
      help: 'Commits that could not be written to the state_dir (their profiles went on from memory only).',
      registers: reg,
    }),
    deltaBaselines: new Gauge({
      name: 'pprof_scraper_delta_baselines',
      help: 'Target × type baselines held for computing deltas of cumulative profiles, by repository.',
      labelNames: ['repository'] as const,
      registers: reg,
    }),
    deltaBaselineBytes: new Gauge({
      name: 'pprof_scraper_delta_baseline_bytes',
      help: 'Memory held by baselines, by repository: all of them when kept in memory; with baselines in state_dir, only those the disk refused.',
      labelNames: ['repository'] as const,
      registers: reg,
    }),
    deltaEvictions: new Counter({
      name: 'pprof_scraper_delta_baseline_evictions_total',
      help: 'Baselines forgotten for lack of memory, by repository: the next profile of their series only sets a baseline again.',
      labelNames: ['repository'] as const,
      registers: reg,
    }),
    deltaResets: new Counter({
      name: 'pprof_scraper_delta_resets_total',
      help: 'Profiles that only set a baseline instead of being sent as a delta, by repository and reason (first, restart).',
      labelNames: ['repository', 'reason'] as const,
      registers: reg,
    }),
    configLastReloadSuccessful: new Gauge({
      name: 'pprof_scraper_config_last_reload_successful',
      help: 'Whether the last config (re)load was applied (1) or refused, the old config still running (0).',
      registers: reg,
    }),
    configLastReloadSuccessTimestamp: new Gauge({
      name: 'pprof_scraper_config_last_reload_success_timestamp_seconds',
      help: 'When a config was last applied, in seconds since the epoch.',
      registers: reg,
    }),
    configHash: new Gauge({
      name: 'pprof_scraper_config_hash',
      help: 'The running config file: the first 48 bits of its sha256, as a number (compare across hosts).',
      registers: reg,
    }),
    configReloads: new Counter({
      name: 'pprof_scraper_config_reloads_total',
      help: 'Config reloads by trigger (signal, file, http) and result (applied, invalid, failed).',
      labelNames: ['trigger', 'result'] as const,
      registers: reg,
    }),
    buildInfo: new Gauge({
      name: 'pprof_scraper_build_info',
      help: 'Always 1; the version, the commit it was built from and the Node version, as labels.',
      labelNames: ['version', 'commit', 'node'] as const,
      registers: reg,
      collect() {
        this.set(buildInfo(), 1);
      },
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
