import type { Logger } from 'pino';
import type { ScrapeTask } from '../scrape/scheduler.js';

/** A target × type failing now: one record per failure streak, updated in place. */
interface Streak {
  readonly since: number;
  failures: number;
  /** Failures since the last line about it. */
  unlogged: number;
  lastLineAt: number;
  result: string;
  reason: string;
}

/** How often a target × type that keeps failing is logged again. */
export const FAILURE_SUMMARY_EVERY_MS = 5 * 60_000;

/**
 * The log of scrape failures, by target × type: the first failure of a
 * streak at once (`scrape failed`), then while it lasts at most one line
 * every few minutes with the count and the last reason (`scrape still
 * failing`), and the recovery (`scrape recovered`). Thirty services down
 * make thirty lines, not thirty a tick; every failure is still counted in
 * pprof_scraper_scrapes_total and shown on /targets.
 */
export class ScrapeFailureLog {
  readonly #logger: Logger;
  readonly #everyMs: number;
  readonly #streaks = new Map<string, Streak>();

  constructor(logger: Logger, everyMs = FAILURE_SUMMARY_EVERY_MS) {
    this.#logger = logger;
    this.#everyMs = everyMs;
  }

  failed(task: ScrapeTask, result: string, reason: string): void {
    const now = Date.now();
    const streak = this.#streaks.get(task.key);
    const { target, profile } = task;
    if (!streak) {
      this.#streaks.set(task.key, { since: now, failures: 1, unlogged: 0, lastLineAt: now, result, reason });
      this.#logger.warn({ target: target.address, service: target.service, type: profile.type, url: profile.url, result, reason }, 'scrape failed');
      return;
    }
    streak.failures++;
    streak.unlogged++;
    streak.result = result;
    streak.reason = reason;
    if (now - streak.lastLineAt < this.#everyMs) return;
    this.#logger.warn(
      {
        target: target.address,
        service: target.service,
        type: profile.type,
        url: profile.url,
        result,
        reason,
        failures: streak.failures,
        failed_since_last_line: streak.unlogged,
        failing_since: new Date(streak.since).toISOString(),
      },
      'scrape still failing',
    );
    streak.unlogged = 0;
    streak.lastLineAt = now;
  }

  succeeded(task: ScrapeTask): void {
    const streak = this.#streaks.get(task.key);
    if (!streak) return;
    this.#streaks.delete(task.key);
    const { target, profile } = task;
    this.#logger.info(
      { target: target.address, service: target.service, type: profile.type, failures: streak.failures, failed_for_ms: Date.now() - streak.since, last_reason: streak.reason },
      'scrape recovered',
    );
  }

  /** After a build: the streaks of gone target × types are forgotten. */
  retain(live: ReadonlySet<string>): void {
    for (const key of this.#streaks.keys()) if (!live.has(key)) this.#streaks.delete(key);
  }
}
