import type { Logger } from 'pino';
import { LastingKeys } from '../log-limiter.js';
import type { Metrics } from '../metrics.js';
import type { ScrapeTask } from '../scrape/scheduler.js';
import type { ScrapeOutcome } from '../scrape/scraper.js';
import { LastProfiles } from '../server/last-profiles.js';
import { ScrapeFailureLog } from './failure-log.js';
import type { HeldProfile } from '../server/last-profiles.js';
import type { BuildResult, DroppedTarget, Target } from './types.js';
import { TargetUp } from './up-gauge.js';

/** The last scrape of one target × type, as /targets shows it. */
export interface LastScrape {
  readonly time: string;
  readonly durationMs: number;
  readonly bytes: number;
  readonly result: string;
  readonly error?: string;
}

/** A LastScrape as held: overwritten in place at each scrape, its time formatted only when read. */
interface HeldScrape {
  at: number;
  durationMs: number;
  bytes: number;
  result: string;
  error: string | undefined;
}

export interface TargetStatusOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Memory for the last profile of each target × type, for the status page's downloads. */
  readonly lastProfilesBytes: number;
  /** Most pprof_scraper_target_up series (server.target_up_limit; default 5000). */
  readonly targetUpLimit?: number;
  /** How often a target × type that keeps failing is logged again (default 5 minutes). */
  readonly failureSummaryMs?: number;
}

/**
 * What the daemon tells of its targets beyond their settings, as Prometheus's
 * scrape/target.go keeps each target's last report. After a build: the
 * target and drop gauges, and each drop (or repository a target cannot
 * reach) logged when it starts, not at every build while it lasts. After a
 * scrape: its metrics and log lines, and its result and profile, held for
 * /targets and the status page until the target goes.
 */
export class TargetStatus {
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #lastScrapes = new Map<string, HeldScrape>();
  readonly #lastProfiles: LastProfiles;
  readonly #dropsLogged = new LastingKeys();
  readonly #notSentLogged = new LastingKeys();
  /** Targets whose profile time was replaced by the scrape time, logged once each. */
  readonly #skewedTargets = new Set<string>();
  readonly #failures: ScrapeFailureLog;
  readonly #up: TargetUp;

  constructor(options: TargetStatusOptions) {
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#lastProfiles = new LastProfiles(options.lastProfilesBytes);
    this.#failures = new ScrapeFailureLog(options.logger, options.failureSummaryMs);
    this.#up = new TargetUp(options.logger, options.metrics, options.targetUpLimit ?? 5000);
  }

  /** server.target_up_limit, at each apply. */
  setTargetUpLimit(limit: number): void {
    this.#up.setLimit(limit);
  }

  /** After each build of the targets. */
  built(result: BuildResult): void {
    this.#count(result);
    this.#logDrops(result.dropped);
    this.#logNotSent(result.targets);
    this.#forgetGone(result.targets);
  }

  /** After each scrape, whatever its outcome. */
  scraped(task: ScrapeTask, outcome: ScrapeOutcome): void {
    const { target, profile } = task;
    const result = outcome.ok ? 'success' : outcome.result;
    this.#metrics.scrapes.inc({ provider: target.provider, type: profile.type, result });
    this.#metrics.scrapeDuration.observe({ type: profile.type }, outcome.durationMs / 1000);
    this.#metrics.scrapedBytes.inc({ type: profile.type }, outcome.bytes);
    // one record per target × type for its life: a new one a minute would be garbage for the old generation
    const error = outcome.ok ? undefined : outcome.reason;
    const held = this.#lastScrapes.get(task.key);
    if (held) {
      held.at = Date.now();
      held.durationMs = outcome.durationMs;
      held.bytes = outcome.bytes;
      held.result = result;
      held.error = error;
    } else {
      this.#lastScrapes.set(task.key, { at: Date.now(), durationMs: outcome.durationMs, bytes: outcome.bytes, result, error });
    }
    this.#up.scraped(task, outcome.ok);
    if (!outcome.ok) {
      this.#lastProfiles.delete(task.key);
      this.#failures.failed(task, result, outcome.reason);
      return;
    }
    this.#failures.succeeded(task);
    this.#lastProfiles.set(task.key, outcome.profile);
    if (outcome.ignoredTimeMs !== undefined && !this.#skewedTargets.has(target.id)) {
      this.#skewedTargets.add(target.id);
      this.#logger.warn(
        { target: target.address, service: target.service, type: profile.type, profile_time: new Date(outcome.ignoredTimeMs).toISOString(), scrape_time: new Date(outcome.profile.time).toISOString() },
        "profile time is more than 10 minutes from the scrape: filed under the scrape time instead (logged once per target); check the target's clock",
      );
    }
  }

  lastScrape(targetId: string, type: string): LastScrape | undefined {
    const held = this.#lastScrapes.get(keyOf(targetId, type));
    if (!held) return undefined;
    const { at, durationMs, bytes, result, error } = held;
    return { time: new Date(at).toISOString(), durationMs, bytes, result, ...(error !== undefined ? { error } : {}) };
  }

  /** Whether the last good profile is still held (it may have been evicted), without fetching it. */
  holdsProfile(targetId: string, type: string): boolean {
    return this.#lastProfiles.has(keyOf(targetId, type));
  }

  /** The last good profile of a target × type, while it is held. */
  lastProfile(targetId: string, type: string): HeldProfile | undefined {
    return this.#lastProfiles.get(keyOf(targetId, type));
  }

  #count(result: BuildResult): void {
    const byProvider = new Map<string, number>();
    for (const t of result.targets) byProvider.set(t.provider, (byProvider.get(t.provider) ?? 0) + 1);
    this.#metrics.targets.reset();
    for (const [provider, n] of byProvider) this.#metrics.targets.set({ provider }, n);
    this.#metrics.droppedTargets.reset();
    const droppedBy = new Map<string, number>();
    for (const d of result.dropped) droppedBy.set(d.provider, (droppedBy.get(d.provider) ?? 0) + 1);
    for (const [provider, n] of droppedBy) this.#metrics.droppedTargets.set({ provider }, n);
  }

  /** Another shard's targets are expected: debug only. */
  #logDrops(dropped: readonly DroppedTarget[]): void {
    for (const d of dropped) {
      if (!this.#dropsLogged.isNew(`${d.source}\0${d.address ?? ''}\0${d.reason}`)) continue;
      const fields = { provider: d.provider, source: `discovery[${d.source}]`, address: d.address, reason: d.reason };
      if (d.kind === 'shard') this.#logger.debug(fields, 'target dropped');
      else this.#logger.warn(fields, 'target dropped');
    }
    this.#dropsLogged.endRound();
  }

  /** Says why and what to do: the other repositories still get the target's profiles. */
  #logNotSent(targets: readonly Target[]): void {
    for (const t of targets) {
      for (const n of t.notSentTo ?? []) {
        if (!this.#notSentLogged.isNew(`${t.id}\0${n.repository}\0${n.reason}`)) continue;
        this.#logger.warn({ provider: t.provider, source: `discovery[${t.source}]`, address: t.address, service: t.service, repository: n.repository, reason: n.reason }, 'target not sent to a repository: the others get its profiles');
      }
    }
    this.#notSentLogged.endRound();
  }

  #forgetGone(targets: readonly Target[]): void {
    const live = new Set(targets.flatMap((t) => t.profiles.map((p) => keyOf(t.id, p.type))));
    for (const key of this.#lastScrapes.keys()) if (!live.has(key)) this.#lastScrapes.delete(key);
    const liveIds = new Set(targets.map((t) => t.id));
    for (const id of this.#skewedTargets) if (!liveIds.has(id)) this.#skewedTargets.delete(id);
    this.#failures.retain(live);
    this.#up.retain(targets, live);
    this.#lastProfiles.retain(live);
  }
}

/** The key of a target × type, as the scheduler's tasks have it. */
function keyOf(targetId: string, type: string): string {
  return `${targetId}/${type}`;
}
