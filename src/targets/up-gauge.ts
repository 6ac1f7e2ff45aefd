import type { Logger } from 'pino';
import type { Metrics, TargetUpSeries } from '../metrics.js';
import type { ScrapeTask } from '../scrape/scheduler.js';
import type { Target } from './types.js';

/**
 * The series of `pprof_scraper_target_up{service, instance, type}`: 1 when
 * the last scrape of a target × type succeeded, 0 when it failed, none
 * before its first scrape. Bounded: at most `limit` series (server.
 * target_up_limit), given to target × types in the order of their first
 * scrape and kept while they live; the ones past it get none, and
 * `pprof_scraper_target_up_unexposed` says how many. A scrape updates its
 * series in place: one record per target × type for its life, none per
 * scrape.
 */
export class TargetUp {
  readonly #logger: Logger;
  readonly #series = new Map<string, TargetUpSeries & { up: number }>();
  #limit: number;
  /** Target × types now, exposed or not. */
  #live = 0;
  /** The limit was reached and said so: said again only after it is no longer reached. */
  #warned = false;

  constructor(logger: Logger, metrics: Metrics, limit: number) {
    this.#logger = logger;
    this.#limit = limit;
    metrics.targetUpSource.series = () => this.#series.values();
    metrics.targetUpSource.unexposed = () => (this.#limit === 0 ? 0 : Math.max(0, this.#live - this.#limit));
  }

  /** server.target_up_limit changed: a lower one drops the newest series. */
  setLimit(limit: number): void {
    this.#limit = limit;
    if (this.#series.size <= limit) return;
    let keep = limit;
    for (const key of this.#series.keys()) if (keep-- <= 0) this.#series.delete(key);
    this.#warnFull();
  }

  /** After a scrape. */
  scraped(task: ScrapeTask, ok: boolean): void {
    const held = this.#series.get(task.key);
    if (held) {
      held.up = ok ? 1 : 0;
      return;
    }
    if (this.#series.size >= this.#limit) {
      this.#warnFull();
      return;
    }
    const { target, profile } = task;
    this.#series.set(task.key, { service: target.service, instance: target.labels['instance'] ?? target.address, type: profile.type, up: ok ? 1 : 0 });
  }

  /** After a build: gone target × types lose their series, which frees room for others. */
  retain(targets: readonly Target[], live: ReadonlySet<string>): void {
    for (const key of this.#series.keys()) if (!live.has(key)) this.#series.delete(key);
    let count = 0;
    for (const t of targets) count += t.profiles.length;
    this.#live = count;
    if (count <= this.#limit) this.#warned = false;
  }

  #warnFull(): void {
    if (this.#warned || this.#limit === 0) return;
    this.#warned = true;
    this.#logger.warn(
      { limit: this.#limit, target_types: this.#live },
      'pprof_scraper_target_up has reached server.target_up_limit: target × types scraped after the first ones get no series (pprof_scraper_target_up_unexposed counts them); raise the limit, or alert on pprof_scraper_scrapes_total for the rest',
    );
  }
}
